"""Demo data: a reproducible, realistic desk for a first look, screenshots and benchmarks.

Two "story" tickets go through the Desk actions so they follow the real rules; the volume is
simulated in Python and bulk-inserted in large batches with ids computed here, because one Desk
transaction per action would take hours for the 100,000-ticket benchmark (issue 6).
Every address is under example.com, example.org or example.net (RFC 2606): demo mail can
never reach a real person.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from helpdesk_tui.clock import Clock, FixedClock, SystemClock
from helpdesk_tui.config import AgentConfig, CategoryConfig, Config, default_config
from helpdesk_tui.desk.setup import apply_config, ensure_desk_secret
from helpdesk_tui.mail.msgid import make_message_id
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store, sync_id_sequences

CHUNK_TICKETS = 2000  # tickets per write transaction: about 10,000 messages and 14,000 events
WINDOW_DAYS = 90
SUPPORT_ADDRESS = "support@helpdesk.example.com"
DEMO_OS_USER = "demo"

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class DemoSummary:
    """What fill_demo added to the store."""

    tickets: int
    messages: int
    agents: int
    customers: int
    by_status: dict[str, int] = field(default_factory=dict)


def store_is_empty(store: Store) -> bool:
    """True when the store holds no tickets (for `helpdesk demo --if-empty`)."""
    with store.read() as s:
        return s.exec(select(M.Ticket.id).limit(1)).first() is None


# ============================================================================ built-in words

AGENTS: tuple[tuple[str, str, str], ...] = (
    ("alice", "Alice Andersen", "Alice Andersen\nFirst-line support"),
    ("bob", "Bob Bråten", "Bob Bråten\nNetwork and VPN"),
    ("carol", "Carol Christensen", "Carol Christensen\nSupport, Printers and Hardware"),
    ("dave", "Dave Dahl", "Dave Dahl\nHardware"),
    ("erin", "Erin Eriksen", "Erin Eriksen\nSupport"),
    ("frank", "Frank Fischer", "Frank Fischer\nBilling"),
    ("grace", "Grace Grünwald", "Grace Grünwald\nSales and Billing"),
    ("heidi", "Heidi Hågensen", "Heidi Hågensen\nPrinters"),
)

# name, parent, agents, default priority, assignment method
CATEGORIES: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("Support", "", ("alice", "bob", "carol", "erin"), "Normal", "queue"),
    ("Billing", "", ("frank", "grace"), "Normal", "fewest_active"),
    ("Hardware", "", ("dave", "erin", "carol"), "Normal", "queue"),
    ("Printers", "Hardware", ("heidi", "dave", "carol"), "Normal", "round_robin"),
    ("Sales", "", ("grace", "frank", "alice"), "Low", "queue"),
)

FIRST = {
    "nb": (
        "Åse",
        "Bjørn",
        "Ingrid",
        "Håkon",
        "Sigrid",
        "Ola",
        "Kari",
        "Eirik",
        "Solveig",
        "Torbjørn",
        "Marit",
        "Øystein",
        "Ragnhild",
        "Jørgen",
        "Live",
        "Mats",
        "Nora",
        "Sindre",
    ),
    "de": (
        "Jürgen",
        "Lena",
        "Matthias",
        "Sabine",
        "Jörg",
        "Anja",
        "Klaus",
        "Grete",
        "Lukas",
        "Sophie",
        "Björn",
        "Ute",
    ),
    "en": (
        "Zoë",
        "James",
        "Emily",
        "Oliver",
        "Hannah",
        "Thomas",
        "Chloe",
        "Daniel",
        "Grace",
        "Samuel",
        "Amelia",
        "Noah",
        "Isla",
        "Jack",
        "Renée",
        "Priya",
    ),
}
LAST = {
    "nb": (
        "Hansen",
        "Johansen",
        "Olsen",
        "Bjørnstad",
        "Løvås",
        "Dæhli",
        "Østby",
        "Haugen",
        "Berg",
        "Sæther",
        "Lien",
        "Strøm",
        "Aas",
        "Nygård",
        "Sørensen",
        "Kristiansen",
    ),
    "de": (
        "Müller",
        "Schröder",
        "Weiß",
        "Köhler",
        "Groß",
        "Fischer",
        "Schäfer",
        "Wagner",
        "Hoffmann",
        "Krüger",
    ),
    "en": (
        "Smith",
        "Taylor",
        "Brown",
        "Walker",
        "O'Neill",
        "Clarke",
        "Hughes",
        "Evans",
        "Patel",
        "Wright",
        "Khan",
        "Robinson",
        "Harris",
    ),
}
COMPANY_PARTS = {
    "nb": (
        (
            "Nordlys",
            "Fjellheim",
            "Blåbær",
            "Tindved",
            "Sørlandet",
            "Kløver",
            "Havbris",
            "Granli",
            "Solstreif",
            "Bjørkely",
            "Lyngmo",
            "Øvre Strand",
        ),
        (
            "Regnskap",
            "Bygg",
            "Design",
            "Logistikk",
            "Tannlegesenter",
            "Barnehage",
            "Eiendom",
            "Elektro",
            "Kafé",
            "Transport",
        ),
        "AS",
    ),
    "de": (
        ("Müller", "Weißdorn", "Bergmann", "Schäfer", "Lindenhof", "Köhler", "Brückner"),
        ("Apotheke", "Elektro", "Maschinenbau", "Bäckerei", "Steuerberatung", "Logistik"),
        "GmbH",
    ),
    "en": (
        (
            "Harbour Lane",
            "Greenfield",
            "Oak & Ash",
            "Brightwater",
            "Pinecrest",
            "Riverside",
            "Copper Kettle",
            "Bluebell",
            "Northgate",
            "Kestrel",
        ),
        (
            "Books",
            "Dental",
            "Architects",
            "School",
            "Veterinary",
            "Bakery",
            "Consulting",
            "Studios",
            "Logistics",
            "Engineering",
        ),
        "Ltd",
    ),
}
TLDS = ("example.com", "example.org", "example.net")
PRIVATE_DOMAINS = ("mail.example.net", "post.example.org", "inbox.example.com")
_ASCII = str.maketrans(
    {
        "æ": "ae",
        "ø": "o",
        "å": "a",
        "ü": "ue",
        "ö": "oe",
        "ä": "ae",
        "ß": "ss",
        "é": "e",
        "ë": "e",
        "'": "",
        "&": "",
        " ": "-",
    }
)

GREETING = {
    "en": ("Hi,", "Hello,", "Hi there,", "Good morning,", "Dear support,", "Hello support team,"),
    "nb": ("Hei,", "Hei!", "God morgen,", "Hei support,"),
    "de": ("Hallo,", "Guten Morgen,", "Sehr geehrte Damen und Herren,", "Hallo zusammen,"),
}
SIGN_OFF = {
    "en": (
        "Thanks,\n{first}",
        "Best regards,\n{first} {last}",
        "Cheers,\n{first}",
        "Kind regards\n{first} {last}\n{company}",
        "Thanks in advance!\n{first}",
    ),
    "nb": ("Hilsen\n{first}", "Mvh\n{first} {last}\n{company}", "Takk på forhånd!\n{first}"),
    "de": ("Viele Grüße\n{first} {last}", "Mit freundlichen Grüßen\n{first} {last}\n{company}"),
}
AGENT_GREETING = {"en": "Hi {first},", "nb": "Hei {first},", "de": "Hallo {first},"}
AGENT_SIGN_OFF = {
    "en": ("Best regards,\n{agent}", "Kind regards,\n{agent}", "Thanks,\n{agent}"),
    "nb": ("Med vennlig hilsen\n{agent}", "Hilsen\n{agent}"),
    "de": ("Viele Grüße\n{agent}", "Mit freundlichen Grüßen\n{agent}"),
}

FILL: dict[str, tuple[str, ...]] = {
    "device": (
        "HP LaserJet M404",
        "Brother HL-L2350",
        "Canon i-SENSYS",
        "Kyocera ECOSYS",
        "Ricoh IM C3000",
    ),
    "laptop": ("ThinkPad T14", "Latitude 5440", "MacBook Air", "EliteBook 840", "Surface Laptop"),
    "floor": ("2nd", "3rd", "4th", "ground", "top"),
    "room": (
        "the meeting room",
        "reception",
        "the open office",
        "the accounts office",
        "møterom Fjorden",
    ),
    "app": ("Outlook", "Teams", "Visma", "Tripletex", "SAP", "Salesforce", "OneDrive"),
    "month": ("January", "February", "March", "September", "October", "November"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
}

# The same words for requests written in Norwegian or German.
FILL_BY_LANG: dict[str, dict[str, tuple[str, ...]]] = {
    "nb": {
        "floor": ("2.", "3.", "4.", "1."),
        "room": ("møterom Fjorden", "resepsjonen", "kantina", "regnskapsavdelingen"),
        "month": ("januar", "februar", "mars", "september", "oktober", "november"),
        "weekday": ("mandag", "tirsdag", "onsdag", "torsdag", "fredag"),
    },
    "de": {
        "floor": ("2.", "3.", "1."),
        "room": ("im Besprechungsraum", "am Empfang", "in der Buchhaltung"),
        "month": ("Januar", "Februar", "März", "September", "Oktober", "November"),
        "weekday": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag"),
    },
}

# key, category, tag, supplier; then lists: subjects (en / nb / de), problems (English unless
# marked "nb|" or "de|"), replies, notes, follow-ups, supplier answers.
_Topic = dict[str, Any]
TOPICS: tuple[_Topic, ...] = (
    {
        "key": "printer",
        "category": "Printers",
        "tag": "printer",
        "supplier": "service@printcare.example.net",
        "en": (
            "Printer on the {floor} floor jams every few pages",
            "{device} says 'paper jam' but there is no paper in it",
            "Printer prints blank pages",
            "Cannot print from my laptop since this morning",
            "Printer in {room} is offline",
        ),
        "nb": ("Skriveren i {room} skriver ikke ut", "Papirstopp på skriveren i {floor} etasje"),
        "de": ("Drucker druckt nur leere Seiten", "Drucker im {floor} Stock meldet Papierstau"),
        "problem": (
            "The {device} in {room} keeps jamming. We have opened every tray and there is "
            "nothing stuck, but it still shows the error after a restart.",
            "Since this morning nothing comes out of the printer. The jobs sit in the queue "
            "and then disappear. Other people on the {floor} floor have the same problem.",
            "nb|Skriveren viser «papirstopp» hele tiden, men det er ikke noe papir som sitter "
            "fast. Vi har prøvd å skru den av og på.",
            "de|Der Drucker druckt seit gestern nur leere Seiten. Toner ist laut Anzeige zu 60 % "
            "voll.",
        ),
        "reply": (
            "Could you send us a photo of the display when the error shows? Then we can see "
            "which tray the printer complains about.",
            "We have restarted the print server and cleared the queue. Could you try again "
            "and tell us if the jobs come out now?",
            "A technician will come by on {weekday} to replace the pickup roller. The printer "
            "can be used in the meantime, but it may jam now and then.",
        ),
        "note": (
            "Print server queue was stuck again, restarted the spooler.",
            "Roller kit ordered from Printcare, order {order}.",
        ),
        "followup": (
            "It jammed again just now, same message on the display.",
            "Here is the photo, the display says 'Tray 2: check paper'.",
        ),
        "answer": (
            "Thanks for the report. We have ordered a new fuser unit; our technician "
            "will be on site on {weekday} between 9 and 12.",
            "This is a known firmware issue. Version 4.11 fixes it; we will install it "
            "remotely tonight.",
        ),
    },
    {
        "key": "toner",
        "category": "Printers",
        "tag": "printer",
        "supplier": "orders@printcare.example.net",
        "en": ("Toner low on the {device}", "Need new toner cartridges for {room}"),
        "nb": ("Tomt for toner på skriveren", "Bestille toner til {room}"),
        "de": ("Toner fast leer",),
        "problem": (
            "The {device} says the black toner is almost empty. Can you order two new "
            "cartridges for us?",
            "nb|Vi trenger nye tonerkassetter (sort og cyan) til skriveren i {room}.",
        ),
        "reply": (
            "I have ordered two black cartridges; they should arrive within three working days.",
        ),
        "note": ("Order {order} placed with Printcare.",),
        "followup": ("ok|The cartridges arrived today, thank you!",),
        "answer": ("Order {order} has left our warehouse and will be delivered on {weekday}.",),
    },
    {
        "key": "vpn",
        "category": "Support",
        "tag": "vpn",
        "supplier": "support@netpartner.example.org",
        "en": (
            "VPN disconnects every 10 minutes",
            "Cannot connect to the VPN from home",
            "VPN: 'authentication failed' after password change",
            "VPN is very slow when working from home",
        ),
        "nb": ("Får ikke koblet til VPN hjemmefra", "VPN faller ut hele tiden"),
        "de": ("VPN-Verbindung bricht ständig ab",),
        "problem": (
            "When I work from home the VPN drops every ten minutes or so, and then {app} "
            "loses the connection and I have to log in again.",
            "I changed my password yesterday and now the VPN client says 'authentication "
            "failed'. Everything else works with the new password.",
            "nb|Jeg får ikke koblet til VPN hjemmefra. Klienten står bare og «kobler til» i flere "
            "minutter og gir opp.",
            "de|Seit dem Update gestern bricht die VPN-Verbindung alle paar Minuten ab.",
        ),
        "reply": (
            "Could you open the VPN client, click 'Diagnostics' and send us the text it shows? "
            "That tells us where the connection stops.",
            "Your account was still using the old certificate. I have issued a new one; please "
            "restart the VPN client and log in again.",
            "The drops come from a timeout on the firewall, which we have now raised. Please "
            "let us know if it happens again.",
        ),
        "note": (
            "Firewall log shows the session closed by idle timeout, raised it to 60 min.",
            "Certificate for the user had expired, reissued.",
        ),
        "followup": (
            "Here is the diagnostics output: 'TLS handshake timed out (port 443)'.",
            "It worked for a day but today it dropped again twice.",
        ),
        "answer": (
            "We found a configuration error on the concentrator and corrected it. "
            "Please ask the user to try again.",
        ),
    },
    {
        "key": "password",
        "category": "Support",
        "tag": "password",
        "en": (
            "Password reset",
            "Locked out of my account",
            "Password expired, cannot log in",
            "Forgot my password for {app}",
        ),
        "nb": ("Glemt passord", "Kontoen min er låst"),
        "de": ("Passwort vergessen", "Konto gesperrt"),
        "problem": (
            "I typed my password wrong a few times and now my account is locked. Can you "
            "unlock it? I have a customer meeting at 11.",
            "My password expired over the weekend and the reset page says my phone number "
            "is unknown.",
            "nb|Jeg har glemt passordet mitt til {app}. Kan dere hjelpe meg med å tilbakestille "
            "det?",
            "de|Ich habe mein Passwort vergessen und komme nicht mehr in {app}.",
        ),
        "reply": (
            "I have unlocked your account. You can log in again now; the lock clears by "
            "itself after 30 minutes too.",
            "I have sent a one-time code to your work phone. Use it on the reset page to "
            "choose a new password.",
        ),
        "note": ("Identity confirmed by phone before reset.",),
        "followup": (
            "ok|Thanks, I'm in again! 🙏",
            "The code did not arrive, can you send it again?",
        ),
        "answer": (),
    },
    {
        "key": "email",
        "category": "Support",
        "tag": "email",
        "en": (
            "Mailbox full",
            "{app} keeps asking for my password",
            "E-mails to customers bounce",
            "Shared mailbox missing in {app}",
        ),
        "nb": ("E-post kommer ikke frem", "Innboksen er full"),
        "de": ("E-Mails kommen nicht an",),
        "problem": (
            "I get a message that my mailbox is full and I can no longer send e-mail. I have "
            "already deleted a lot of old mail.",
            "Mail I send to one of our customers comes back with 'message rejected'. It worked "
            "last week.",
            "{app} asks for my password every few minutes, even though I type the right one.",
        ),
        "reply": (
            "I have doubled the size of your mailbox. It can take up to an hour before {app} "
            "shows the new limit.",
            "The customer's server rejects mail with large attachments. Could you try sending "
            "the file as a link instead?",
        ),
        "note": ("Mailbox quota raised from 50 to 100 GB.",),
        "followup": ("It still says the mailbox is full.", "ok|That worked, thanks a lot!"),
        "answer": (),
    },
    {
        "key": "wifi",
        "category": "Support",
        "tag": "network",
        "supplier": "support@netpartner.example.org",
        "en": (
            "Wi-Fi in {room} is very slow",
            "Guest Wi-Fi not working",
            "No network on the {floor} floor",
        ),
        "nb": ("Trådløsnettet er nede i {room}",),
        "de": ("WLAN im Besprechungsraum funktioniert nicht",),
        "problem": (
            "The Wi-Fi in {room} has been very slow all week; video calls keep freezing.",
            "Our visitors cannot log on to the guest network. The login page never loads.",
        ),
        "reply": (
            "One of the access points on the {floor} floor had failed. We have restarted it "
            "and ordered a replacement.",
            "The guest portal certificate had expired. It has been renewed; please try again.",
        ),
        "note": ("AP-3 on the {floor} floor down, rebooted remotely.",),
        "followup": ("ok|It is better now, thank you.", "Still slow in the afternoons."),
        "answer": (
            "The access point is out of warranty; we can replace it for NOK 4 900 "
            "excl. VAT. Shall we go ahead?",
        ),
    },
    {
        "key": "laptop",
        "category": "Hardware",
        "tag": "laptop",
        "supplier": "repairs@pcservice.example.com",
        "en": (
            "Laptop will not start",
            "{laptop} battery drains in an hour",
            "Coffee spilled on my keyboard",
            "Laptop fan very loud",
            "Need a new laptop for a new employee",
        ),
        "nb": ("PC-en starter ikke", "Ny PC til nyansatt"),
        "de": ("Laptop startet nicht mehr",),
        "problem": (
            "My {laptop} does not start any more. The power light blinks orange three times "
            "and then nothing happens.",
            "The battery on my {laptop} lasts barely an hour, even with the screen dimmed.",
            "I spilled coffee on my keyboard and now several keys don't work. Sorry!",
            "We have a new colleague starting on {weekday}. Could you prepare a laptop and an "
            "account for her?",
        ),
        "reply": (
            "Please bring the laptop to the IT desk and we will give you a loan machine while "
            "we send it in for repair.",
            "The battery is worn out. A new one is ordered; it usually takes a week.",
            "The laptop is ready; you can pick it up at the IT desk from {weekday}.",
        ),
        "note": (
            "Serial number checked: still under warranty until {month}.",
            "Loan laptop L-07 handed out.",
        ),
        "followup": ("When can I expect my laptop back?", "ok|Picked it up, all good. 👍"),
        "answer": (
            "The mainboard was replaced under warranty. The laptop is on its way back to you.",
            "Repair quote: NOK 2 350 for a new keyboard. Please confirm.",
        ),
    },
    {
        "key": "screen",
        "category": "Hardware",
        "tag": "hardware",
        "supplier": "repairs@pcservice.example.com",
        "en": (
            "Second monitor not detected",
            "Docking station stopped working",
            "Flickering screen",
        ),
        "nb": ("Skjermen flimrer",),
        "de": ("Zweiter Bildschirm wird nicht erkannt",),
        "problem": (
            "My second monitor is not detected when I connect the laptop to the docking "
            "station. It worked on Friday.",
            "nb|Skjermen min flimrer hele tiden, spesielt når jeg har mange vinduer oppe.",
        ),
        "reply": (
            "Please try another cable first; if that does not help we will swap the "
            "docking station.",
        ),
        "note": ("Swapped the dock, old one goes back to the supplier.",),
        "followup": ("Another cable did not help.",),
        "answer": ("The docking station is covered by warranty; a replacement is on its way.",),
    },
    {
        "key": "invoice",
        "category": "Billing",
        "tag": "invoice",
        "en": (
            "Question about invoice {inv}",
            "Invoice {inv} charged twice",
            "Wrong VAT on invoice {inv}",
            "Please send invoices to our new address",
        ),
        "nb": ("Spørsmål om faktura {inv}", "Feil på faktura {inv}"),
        "de": ("Frage zur Rechnung {inv}", "Rechnung {inv} doppelt abgebucht"),
        "problem": (
            "We have been charged twice for invoice {inv} ({amount}). Could you check and "
            "refund one of the payments?",
            "Invoice {inv} has 25 % VAT, but the service should be exempt. Can you send a "
            "corrected invoice?",
            "nb|Fra {month} skal alle fakturaer sendes til faktura@{domain}. Kan dere oppdatere "
            "dette?",
            "de|Die Rechnung {inv} wurde zweimal von unserem Konto abgebucht.",
        ),
        "reply": (
            "You are right, the payment was registered twice. I have asked our accounts "
            "department to refund {amount}; it will be on your account within 5 working days.",
            "A corrected invoice with the right VAT is attached to this e-mail. The old one "
            "has been credited.",
            "We have updated the invoice address; the next invoice will go there.",
        ),
        "note": (
            "Credit note issued in the billing system.",
            "Checked the bank statement: two payments of {amount} on the same day.",
        ),
        "followup": (
            "Thank you! Can you also send the credit note?",
            "We still have not received the refund.",
        ),
        "answer": (),
    },
    {
        "key": "refund",
        "category": "Billing",
        "tag": "refund",
        "supplier": "billing@payflow.example.net",
        "en": ("Refund for cancelled order {order}", "Card charged but order failed"),
        "nb": ("Refusjon av kansellert ordre {order}",),
        "de": ("Rückerstattung für Bestellung {order}",),
        "problem": (
            "I cancelled order {order} the same day, but my card has still been charged {amount}.",
            "The web shop gave me an error at checkout, but the money is gone from my card.",
        ),
        "reply": (
            "I have asked our payment provider to look at the transaction and will get "
            "back to you as soon as I hear from them.",
        ),
        "note": ("Transaction id looked up in the payment portal.",),
        "followup": ("Any news about the refund?",),
        "answer": (
            "The payment for order {order} was reversed today; the customer should see "
            "the money within 3 to 5 days.",
        ),
    },
    {
        "key": "delivery",
        "category": "Sales",
        "tag": "delivery",
        "supplier": "tracking@fraktservice.example.net",
        "en": (
            "Where is my order {order}?",
            "Delivery delayed for order {order}",
            "Parcel delivered to the wrong address",
            "Missing items in order {order}",
        ),
        "nb": ("Hvor er bestillingen min? ({order})", "Forsinket levering"),
        "de": ("Lieferung {order} verspätet", "Wo bleibt meine Bestellung {order}?"),
        "problem": (
            "We ordered on {weekday} and were promised delivery within two days, but order "
            "{order} still has not arrived.",
            "The tracking page says the parcel was delivered, but nobody here has seen it.",
            "nb|Bestillingen {order} skulle kommet forrige uke. Har dere noe sporingsnummer?",
            "de|Unsere Bestellung {order} ist immer noch nicht angekommen.",
        ),
        "reply": (
            "I'm sorry for the delay. I have asked the carrier where the parcel is and will "
            "let you know as soon as I hear from them.",
            "The parcel is on its way; the tracking number is {track}.",
            "We are sending the missing items today at our cost.",
        ),
        "note": ("Carrier says the parcel is held at the terminal.",),
        "followup": ("ok|It arrived this morning, thanks!", "Still nothing here."),
        "answer": (
            "The parcel was held at our terminal because of a damaged label. It will be "
            "delivered on {weekday}; tracking number {track}.",
        ),
    },
    {
        "key": "licence",
        "category": "Sales",
        "tag": "licence",
        "supplier": "licensing@softvendor.example.org",
        "en": (
            "Need 5 more licences for {app}",
            "Licence expired for {app}",
            "Renewal of our software subscription",
        ),
        "nb": ("Flere lisenser til {app}",),
        "de": ("Lizenzverlängerung {app}",),
        "problem": (
            "We are hiring five new people and need five more licences for {app}. What "
            "would that cost?",
            "{app} says our licence expired yesterday. We paid the renewal in {month}.",
        ),
        "reply": (
            "I have sent you a quote for five more licences; they can be activated the "
            "same day you accept it.",
        ),
        "note": ("Checked the licence portal: renewal not registered by the vendor.",),
        "followup": ("Quote accepted, please go ahead.",),
        "answer": (
            "The renewal was registered on the wrong customer number. It is corrected "
            "and the licence is active again.",
        ),
    },
    {
        "key": "quote",
        "category": "Sales",
        "tag": "quote",
        "en": (
            "Request for quote: {n} laptops",
            "Price for a support agreement",
            "Discount for schools?",
        ),
        "nb": ("Tilbud på serviceavtale",),
        "de": ("Angebot für {n} Laptops",),
        "problem": (
            "Could you send us a quote for {n} laptops with docking stations and three years "
            "of on-site warranty?",
            "nb|Vi vurderer en serviceavtale. Kan dere sende et tilbud?",
        ),
        "reply": ("Thank you for your interest. The quote is attached; it is valid for 30 days.",),
        "note": ("Quote {order} created in the CRM.",),
        "followup": ("Thanks, we will discuss it on our board meeting on {weekday}.",),
        "answer": (),
    },
    {
        "key": "access",
        "category": "Support",
        "tag": "access",
        "en": (
            "Access to the shared drive",
            "Cannot open the project folder",
            "New employee needs access to {app}",
        ),
        "nb": ("Tilgang til fellesområdet",),
        "de": ("Zugriff auf das Laufwerk",),
        "problem": (
            "I need access to the shared project folder for the {month} campaign. My manager "
            "has approved it.",
            "nb|Jeg får ikke åpnet prosjektmappen; den sier at jeg mangler tilgang.",
        ),
        "reply": (
            "You now have access. You may need to log out and in again before the folder shows up.",
        ),
        "note": ("Approval from the manager found in the thread, access granted.",),
        "followup": ("I still can't see the folder after logging in again.",),
        "answer": (),
    },
)
SPAM: _Topic = {
    "key": "spam",
    "category": "Support",
    "tag": "spam",
    "en": ("(spam)",),
    "problem": ("(spam)",),
    "reply": (),
    "note": (),
    "followup": (),
    "answer": (),
}
# Mail nobody needs to answer: subject, body, sender (None: the customer's own auto-reply).
JUNK: tuple[tuple[str, str, tuple[str, str] | None], ...] = (
    (
        "Boost your website's ranking today!!",
        "Dear Sir/Madam,\n\nwe help companies like yours reach the first page of search "
        "results. Reply to this mail for a free analysis.\n\nBest,\nThe SEO Experts",
        ("SEO Experts", "offers@seo-growth.example.net"),
    ),
    (
        "You have (1) pending delivery: confirm now",
        "Your parcel could not be delivered. Confirm your address and pay the customs fee "
        "of 2.99 to receive it.",
        ("Parcel Service", "no-reply@parcel-notice.example.org"),
    ),
    (
        "Partnership opportunity 🚀",
        "Hi!\n\nWe are a fast-growing agency and would love to partner with you. Do you have "
        "15 minutes for a call this week?\n\nCheers,\nMia",
        ("Mia from Growth Partners", "hello@partner-leads.example.com"),
    ),
    (
        "Undeliverable: Re: your request",
        "Delivery has failed to these recipients or groups:\n\nThe e-mail address you "
        "entered couldn't be found.",
        ("Mail Delivery System", "mailer-daemon@mx.example.net"),
    ),
    (
        "Out of office: Re: your request",
        "I am out of the office until {weekday} with limited access to e-mail. For urgent "
        "matters, please call our main number.",
        None,
    ),
    (
        "Automatisk svar: Ferie",
        "Jeg er på ferie til mandag og leser ikke e-post. Hilsen {first}",
        None,
    ),
    (
        "Abwesenheitsnotiz",
        "Ich bin bis Montag nicht im Büro und habe keinen Zugriff auf meine E-Mails.",
        None,
    ),
)

FOLLOWUP = {  # more information, or waiting
    "en": (
        "Unfortunately it still does not work. I tried again this morning with the same result.",
        "I restarted as you suggested, but the problem came back after an hour.",
        "Thank you for the quick answer. Does this also apply to my colleagues?",
        "Any news on this? It is getting urgent for us.",
    ),
    "nb": ("Det fungerer dessverre fortsatt ikke.", "Har dere noe nytt om denne saken?"),
    "de": ("Leider besteht das Problem weiterhin.", "Gibt es schon Neuigkeiten?"),
}
THANKS = {
    "en": ("Thanks, that fixed it! 🙏", "It works again, thank you so much.", "All good now."),
    "nb": ("Tusen takk, nå virker det!", "Supert, takk for hjelpen!"),
    "de": ("Vielen Dank, jetzt funktioniert es!",),
}
CLOSING_REPLY = {
    "en": (
        "Glad to hear it works now. I am closing this request; just reply to this e-mail "
        "if the problem comes back.",
        "Thanks for confirming. I will close the ticket now.",
    ),
    "nb": (
        "Så bra at det ordnet seg! Vi lukker saken; svar på denne e-posten hvis problemet "
        "kommer tilbake.",
    ),
    "de": (
        "Schön, dass es jetzt funktioniert. Wir schließen die Anfrage; antworten Sie "
        "einfach auf diese E-Mail, falls das Problem wieder auftritt.",
    ),
}
MORE_REPLIES = (
    "Thanks for the update. I am looking into it and will get back to you today.",
    "Could you try once more and tell us exactly what happens, and at what time?",
    "I have talked to a colleague who knows this system well; we are working on it.",
    "We have made a change on our side. Could you check whether it works better now?",
)
POSTPONE_REPLY = (
    "We are waiting for a spare part and will get back to you when it arrives.",
    "As agreed, we will follow this up again after the holidays.",
    "I will check again next week whether the change has helped.",
)
NOTES = (
    "Called {first}, no answer. Will try again after lunch.",
    "Checked the logs: nothing unusual on our side.",
    "Same issue as last month for {org}, see the earlier ticket.",
    "Customer confirmed on the phone that the problem comes and goes.",
    "Remote session done (25 min). Cleared the cache and reinstalled the driver.",
    "Waiting for the customer to send a screenshot.",
)
ASKS = (
    "Hi {colleague}, could you take this one? You helped {org} with something similar.",
    "{colleague}, have you seen this before? I'm stuck.",
    "Kan du se på denne, {colleague}? Jeg kommer ikke videre.",
    "{colleague}, could this be related to the change on {weekday}? Can you have a look?",
    "Can you call them, {colleague}? You know their setup better than I do.",
)
ASK_ANSWERS = (
    "Fixed it on our side; over to you again.",
    "Had a look: it was a setting on their side. Told them on the phone (15 min).",
    "Løst, det var en feil i oppsettet.",
    "Called them and sorted it out over the phone.",
)
REVIEW_ERRORS = (
    "could not decode the body: unknown charset 'x-mac-nordic'; shown as Latin-1",
    "the subject tag names a ticket of another customer; filed here by Message-ID",
    "an attachment (winmail.dat, 38 MB) was larger than the limit and was not stored",
    "two tickets matched the References header; filed under the newest",
    "the From address differs from the Reply-To address",
)
EXTRA_TAGS = ("vip", "on-site", "waiting-for-parts", "follow-up", "escalated", "remote")
SMTP_FAILURE = "550 5.1.1 <{addr}>: Recipient address rejected: User unknown in virtual table"

TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    (
        "acknowledgement",
        "en",
        "[#{number}] We have received your request: {title}",
        "Hello {customer_name},\n\nThank you for contacting {desk_name}. Your request has "
        "number {number}; please keep it in the subject if you write to us about it.\n\n"
        "We will answer as soon as we can.\n\n{desk_name}",
    ),
    (
        "acknowledgement",
        "nb",
        "[#{number}] Vi har mottatt henvendelsen din: {title}",
        "Hei {customer_name},\n\nTakk for at du kontaktet {desk_name}. Saken din har nummer "
        "{number}; behold gjerne nummeret i emnefeltet hvis du skriver til oss om den.\n\n"
        "Vi svarer så snart vi kan.\n\nMed vennlig hilsen\n{desk_name}",
    ),
    (
        "closing",
        "en",
        "Re: {title}",
        "Hello {customer_name},\n\nWe are glad the problem is solved and close request "
        "{number} now. Just reply to this e-mail if you need more help.\n\n"
        "Best regards,\n{agent_name}",
    ),
    (
        "need more info",
        "en",
        "Re: {title}",
        "Hello {customer_name},\n\nTo help you further we need a little more information:\n\n"
        "- What exactly happens, and what did you expect?\n- When did it start?\n"
        "- A screenshot of any error message\n\nBest regards,\n{agent_name}",
    ),
)


# ============================================================================ working time


class _WorkTable:
    """Working seconds between instants, from a prefix-summed table of working intervals.

    The worktime module answers one question at a time; the simulation asks millions, so this
    precomputes the window once and answers each in O(log n), DST and holidays included.
    """

    def __init__(
        self,
        tz: ZoneInfo,
        hours: Mapping[str, Sequence[str]],
        holidays: Sequence[str],
        start: float,
        end: float,
    ) -> None:
        self.always = not hours
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.cum: list[float] = []
        self.cum_end: list[float] = []
        if self.always:
            return
        weekdays = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        day = datetime.fromtimestamp(start, tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, tz).date() + timedelta(days=1)
        total = 0.0
        while day <= last:
            span = hours.get(weekdays[day.weekday()])
            if span and not _is_holiday(day, holidays):
                a = datetime.combine(day, _clock(span[0]), tz).timestamp()
                b = datetime.combine(day, _clock(span[1]), tz).timestamp()
                if b > a:
                    self.starts.append(a)
                    self.ends.append(b)
                    self.cum.append(total)
                    total += b - a
                    self.cum_end.append(total)
            day += timedelta(days=1)

    def _at(self, t: float) -> float:
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.cum[i] + min(t, self.ends[i]) - self.starts[i]

    def between(self, a: float, b: float) -> int:
        if b <= a:
            return 0
        if self.always:
            return int(b - a)
        return int(self._at(b) - self._at(a))

    def add(self, t: float, seconds: float) -> float:
        """The instant `seconds` of working time after t."""
        if self.always or not self.starts:
            return t + seconds
        target = self._at(t) + seconds
        i = bisect_left(self.cum_end, target)
        if i >= len(self.starts):
            return t + seconds
        return max(t, self.starts[i] + (target - self.cum[i]))


# For each English request text of a topic, the subjects that fit it (indexes into "en").
SUBJECTS_FOR: dict[str, tuple[tuple[int, ...], ...]] = {
    "printer": ((0, 1), (3, 4)),
    "toner": ((0, 1),),
    "vpn": ((0,), (2,)),
    "password": ((1,), (2, 0)),
    "email": ((0,), (2,), (1,)),
    "wifi": ((0,), (1,)),
    "laptop": ((0,), (1,), (2,), (4,)),
    "screen": ((0, 1),),
    "invoice": ((1, 0), (2, 0)),
    "refund": ((0,), (1,)),
    "delivery": ((0, 1), (2,)),
    "licence": ((0,), (1, 2)),
    "quote": ((0,),),
    "access": ((0, 1),),
}
# The subject that fits a topic's Norwegian or German request text, when it is not the first.
SUBJECT_IN = {("printer", "nb"): 1, ("invoice", "de"): 1}
CUSTOMER_STEPS = frozenset({"followup", "thanks", "supplier"})


def _problems(topic: _Topic, lang: str) -> list[str]:
    """The topic's problem texts in `lang` ("nb|" and "de|" mark the translated ones)."""
    found = [p[3:] for p in topic["problem"] if p.startswith(f"{lang}|")]
    return found or [p for p in topic["problem"] if p[2:3] != "|"]


def _clock(text: str) -> time:
    hh, mm = text.split(":")
    return time(int(hh), int(mm))


def _is_holiday(day: date, holidays: Sequence[str]) -> bool:
    for text in holidays:
        parts = text.split("/")
        if len(parts) >= 2 and int(parts[0]) == day.day and int(parts[1]) == day.month:
            if len(parts) == 3 and int(parts[2]) != day.year:
                continue
            return True
    return False


# ============================================================================ the cast


@dataclass
class _Agent:
    id: int
    login: str
    name: str
    email: str
    signature: str

    @property
    def first(self) -> str:
        return self.name.split()[0]


@dataclass
class _Customer:
    id: int
    name: str
    first: str
    last: str
    lang: str
    company: str
    domain: str
    addrs: list[str]


@dataclass
class _Category:
    id: int
    name: str
    method: str
    agents: list[_Agent]
    rr_next: int = 0


@dataclass
class _Priority:
    id: int
    name: str
    deadline_minutes: int
    levels: list[tuple[int, int]]  # (alert_level, minutes), ascending
    work: _WorkTable
    only_in_hours: bool = False


@dataclass
class _Status:
    id: int
    name: str
    base: str
    counter: str


# ============================================================================ entry point


def fill_demo(
    store: Store,
    *,
    tickets: int = 500,
    seed: int = 1,
    clock: Clock | None = None,
    progress: ProgressFn | None = None,
    config: Config | None = None,
) -> DemoSummary:
    """Fill the store with `tickets` demo requests; the same seed and clock give the same data.

    `config` is the desk's own config (default: the built-in one); the demo agents and
    categories are added to it, so a configured desk keeps its statuses and priorities.
    """
    if tickets < 0:
        raise ValueError("tickets must be 0 or more")
    now = (clock or SystemClock()).now().astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    cfg = _demo_config(config or default_config())
    apply_config(store, cfg, clock=FixedClock(now - timedelta(days=WINDOW_DAYS + 10)))
    secret = ensure_desk_secret(store)
    store.write(_sign_agents_and_templates)
    store.write(_ensure_mailbox)
    world = _World.load(store, cfg, now)
    customers = _make_customers(store, rng, tickets, now)
    world.customers = customers
    world.junk_senders = _junk_senders(store, now)
    total = tickets
    done = 0
    by_status: dict[str, int] = {}
    messages = 0
    if progress:
        progress(0, total)
    stories = min(2, tickets)
    if stories:
        numbers = _stories(store, world, now, stories)
        messages += _count_messages(store, numbers)
        for status in _statuses_of(store, numbers):
            by_status[status] = by_status.get(status, 0) + 1
        done += stories
        if progress:
            progress(done, total)
    sim = _Simulation(store, world, rng, secret, now)
    for chunk in sim.chunks(tickets - stories):
        counts = store.write(chunk.insert)
        messages += counts.messages
        for status, n in counts.by_status.items():
            by_status[status] = by_status.get(status, 0) + n
        done += counts.tickets
        if progress:
            progress(done, total)
    store.write(sim.finish)
    return DemoSummary(
        tickets=done,
        messages=messages,
        agents=len(world.agents),
        customers=len(customers),
        by_status=dict(sorted(by_status.items())),
    )


def _ensure_mailbox(s: Session) -> None:
    """A desk without mailboxes gets the demo's support address as one, so the desk knows
    the address its demo mail was sent to as its own: replies leave from it, and reply-all
    never copies it. Nothing syncs it (the worker syncs the config's mailboxes only)."""
    if s.exec(select(M.Mailbox.id)).first() is None:
        s.add(M.Mailbox(name="support", address=SUPPORT_ADDRESS))


def _demo_config(base: Config) -> Config:
    """The desk's config plus the demo agents and categories (its own settings win)."""
    logins = {a.login for a in base.agents}
    agents = base.agents + tuple(
        AgentConfig(login, name, f"{login}@helpdesk.example.com")
        for login, name, _sig in AGENTS
        if login not in logins
    )
    categories = list(base.categories)
    names = {c.name: i for i, c in enumerate(categories)}
    for name, parent, members, default_priority, method in CATEGORIES:
        if name in names:
            # Keep the desk's own category settings; only make sure the demo agents work it.
            current = categories[names[name]]
            merged = current.agents + tuple(m for m in members if m not in current.agents)
            categories[names[name]] = replace(current, agents=merged)
        else:
            known = {p.name for p in base.priorities}
            categories.append(
                CategoryConfig(
                    name,
                    parent=parent,
                    agents=members,
                    default_priority=default_priority if default_priority in known else "",
                    assign=method,
                )
            )
    return replace(base, agents=agents, categories=tuple(categories))


def _sign_agents_and_templates(s: Session) -> None:
    signatures = {login: sig for login, _name, sig in AGENTS}
    for agent in s.exec(select(M.Agent).where(col(M.Agent.login).in_(list(signatures)))).all():
        if not agent.signature:
            agent.signature = signatures[agent.login]
            s.add(agent)
    have = {(t.name, t.language) for t in s.exec(select(M.ReplyTemplate)).all()}
    for name, language, subject, body in TEMPLATES:
        if (name, language) not in have:
            s.add(
                M.ReplyTemplate(folder="", name=name, language=language, subject=subject, body=body)
            )


# ============================================================================ desk facts


@dataclass
class _World:
    """What the simulation needs from the store, read once."""

    tz: ZoneInfo
    now: datetime
    agents: list[_Agent]
    by_login: dict[str, _Agent]
    categories: dict[str, _Category]
    priorities: list[_Priority]
    statuses: dict[str, _Status]  # open internal external postponed closed deleted merged
    support_address: str
    mailbox_id: int | None
    domain: str
    customers: list[_Customer] = field(default_factory=list)
    junk_senders: dict[str, _Customer] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store, cfg: Config, now: datetime) -> _World:
        tz = ZoneInfo(cfg.desk.timezone)
        start = (now - timedelta(days=WINDOW_DAYS + 30)).timestamp()
        end = (now + timedelta(days=400)).timestamp()
        with store.read() as s:
            demo_logins = [login for login, _n, _s in AGENTS]
            rows = s.exec(select(M.Agent).where(col(M.Agent.login).in_(demo_logins))).all()
            agents = sorted(
                (_Agent(a.id or 0, a.login, a.name, a.email, a.signature) for a in rows),
                key=lambda a: demo_logins.index(a.login),
            )
            by_login = {a.login: a for a in agents}
            categories: dict[str, _Category] = {}
            for c in s.exec(select(M.Category).order_by(col(M.Category.id))).all():
                member_ids = set(
                    s.exec(
                        select(M.CategoryAgent.agent_id).where(M.CategoryAgent.category_id == c.id)
                    ).all()
                )
                members = [a for a in agents if a.id in member_ids] or agents
                categories[c.name] = _Category(c.id or 0, c.name, c.assign_method, members)
            levels: dict[int, list[tuple[int, int]]] = {}
            for lv in s.exec(select(M.EscalationLevel)).all():
                levels.setdefault(lv.priority_id, []).append((lv.alert_level, lv.minutes))
            priorities = [
                _Priority(
                    p.id or 0,
                    p.name,
                    p.deadline_minutes,
                    sorted(levels.get(p.id or 0, [])),
                    _WorkTable(tz, p.hours, p.holidays, start, end),
                    p.escalate_only_in_hours,
                )
                for p in s.exec(select(M.Priority).order_by(col(M.Priority.rank))).all()
            ]
            statuses = _pick_statuses(list(s.exec(select(M.Status)).all()))
            mailbox = s.exec(
                select(M.Mailbox.id, M.Mailbox.address).order_by(col(M.Mailbox.id))
            ).first()
        return cls(
            tz=tz,
            now=now,
            agents=agents,
            by_login=by_login,
            categories=categories,
            priorities=priorities,
            statuses=statuses,
            support_address=mailbox[1] if mailbox else SUPPORT_ADDRESS,
            mailbox_id=mailbox[0] if mailbox else None,
            domain=cfg.desk.domain,
        )


def _pick_statuses(rows: list[M.Status]) -> dict[str, _Status]:
    """The desk's status for each role, by the default name first, then by base and counter."""
    wanted = {
        "open": ("active", "queue"),
        "internal": ("active", "internal"),
        "external": ("active", "external"),
        "postponed": ("postponed", None),
        "closed": ("closed", None),
        "deleted": ("deleted", None),
        "merged": ("merged", None),
    }
    out: dict[str, _Status] = {}
    ordered = sorted(rows, key=lambda r: r.id or 0)
    for role, (base, counter) in wanted.items():
        named = [r for r in ordered if r.name == role and r.base == base]
        matching = [r for r in ordered if r.base == base and counter in (None, r.counter)]
        fallback = [r for r in ordered if r.base == base]
        candidates = named or matching or fallback
        if not candidates:
            raise LookupError(f"the desk has no status with base {base!r}; run apply_config")
        found = candidates[0]
        out[role] = _Status(found.id or 0, found.name, found.base, found.counter)
    return out


# ============================================================================ customers


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower().translate(_ASCII) if ch.isalnum() or ch in ".-")


def _make_customers(
    store: Store, rng: random.Random, tickets: int, now: datetime
) -> list[_Customer]:
    """Companies and their people, 1-2 addresses each, bulk-inserted."""
    n_customers = max(12, min(10_000, tickets // 6 + 10))
    n_companies = max(6, min(150, n_customers // 12))
    with store.read() as s:
        taken_addresses = set(s.exec(select(M.CustomerAddress.address)).all())
        company_names = set(s.exec(select(M.Company.name)).all())
        next_company = _next_id(s, M.Company)
        next_customer = _next_id(s, M.Customer)
        next_address = _next_id(s, M.CustomerAddress)
    langs = ("nb", "nb", "en", "en", "de")
    companies: list[dict[str, Any]] = []
    company_info: list[tuple[int, str, str, str]] = []  # id, name, lang, domain
    attempts = 0
    while len(companies) < n_companies and attempts < n_companies * 20:
        attempts += 1
        lang = rng.choice(langs)
        prefixes, kinds, legal = COMPANY_PARTS[lang]
        prefix, kind = rng.choice(prefixes), rng.choice(kinds)
        name = f"{prefix} {kind} {legal}"
        if name in company_names:
            continue
        company_names.add(name)
        domain = f"{_slug(prefix)}-{_slug(kind)}.{rng.choice(TLDS)}"
        cid = next_company + len(companies)
        companies.append({"id": cid, "name": name})
        company_info.append((cid, name, lang, domain))
    customers: list[_Customer] = []
    customer_rows: list[dict[str, Any]] = []
    address_rows: list[dict[str, Any]] = []
    window = WINDOW_DAYS + 30
    for i in range(n_customers):
        company = rng.choice(company_info) if company_info and rng.random() < 0.85 else None
        lang = company[2] if company and rng.random() < 0.8 else rng.choice(langs)
        first, last = rng.choice(FIRST[lang]), rng.choice(LAST[lang])
        cust_id = next_customer + i
        primary_domain = company[3] if company else rng.choice(PRIVATE_DOMAINS)
        addrs: list[str] = []
        local_parts = [f"{_slug(first)}.{_slug(last)}", f"{_slug(first)[0]}{_slug(last)}"]
        n_addrs = 2 if rng.random() < 0.3 else 1
        for k in range(n_addrs):
            domain = primary_domain if k == 0 else rng.choice(PRIVATE_DOMAINS)
            base_local = local_parts[k % 2]
            addr, n = f"{base_local}@{domain}", 2
            while addr in taken_addresses:
                addr, n = f"{base_local}{n}@{domain}", n + 1
            taken_addresses.add(addr)
            addrs.append(addr)
            address_rows.append(
                {"id": next_address + len(address_rows), "customer_id": cust_id, "address": addr}
            )
        created = now - timedelta(seconds=rng.randrange(window * 86400))
        customer_rows.append(
            {
                "id": cust_id,
                "name": f"{first} {last}",
                "company_id": company[0] if company else None,
                "created_at": created,
            }
        )
        customers.append(
            _Customer(
                cust_id,
                f"{first} {last}",
                first,
                last,
                lang,
                company[1] if company else "",
                primary_domain,
                addrs,
            )
        )

    def insert(s: Session) -> None:
        conn = s.connection()
        for table, rows in (
            (M.Company, companies),
            (M.Customer, customer_rows),
            (M.CustomerAddress, address_rows),
        ):
            for batch in _batches(rows, 5000):
                conn.execute(sa.insert(table), batch)
        sync_id_sequences(conn, ("company", "customer", "customeraddress"))

    store.write(insert)
    return customers


def _junk_senders(store: Store, now: datetime) -> dict[str, _Customer]:
    """The senders of spam and bounces, as the intake would have made them: customers too."""

    def fn(s: Session) -> dict[str, _Customer]:
        out: dict[str, _Customer] = {}
        for _subject, _body, sender in JUNK:
            if sender is None:
                continue
            name, addr = sender
            row = s.exec(select(M.CustomerAddress).where(M.CustomerAddress.address == addr)).first()
            if row is None:
                customer = M.Customer(name=name, created_at=now - timedelta(days=WINDOW_DAYS))
                s.add(customer)
                s.flush()
                s.add(M.CustomerAddress(customer_id=customer.id or 0, address=addr))
                cid = customer.id or 0
            else:
                cid = row.customer_id
            out[addr] = _Customer(cid, name, name, "", "en", "", addr.split("@")[1], [addr])
        return out

    return store.write(fn)


def _next_id(s: Session, model: Any) -> int:
    return int(s.exec(select(sa.func.coalesce(sa.func.max(model.id), 0))).one()) + 1


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


# ============================================================================ story tickets


def _stories(store: Store, world: _World, now: datetime, count: int) -> list[int]:
    """The two walk-throughs, done with the real Desk actions at the start of the window."""
    from helpdesk_tui.desk.service import Desk, DeskOptions

    options = DeskOptions(
        name="Example Support",
        timezone=str(world.tz),
        domain=world.domain,
        default_from=world.support_address,
    )
    start = _weekday_morning(now - timedelta(days=WINDOW_DAYS), world.tz)
    clk = FixedClock(start)

    def desk(login: str) -> Any:
        return Desk(store, clk, login, os_user=login, options=options)

    numbers: list[int] = []
    phone_customer = world.customers[0]
    alice, bob = desk("alice"), desk("bob")
    detail = alice.register(
        customer_email=phone_customer.addrs[0],
        customer_name=phone_customer.name,
        subject="Laptop cannot reach the file server over VPN",
        body=(
            f"{phone_customer.first} called: since the VPN update yesterday the laptop "
            "connects, but the file server and the ERP system time out. Restarting did not "
            "help. Best reached on the mobile before 15:00."
        ),
        via="phone",
        category="Support",
        priority="High" if any(p.name == "High" for p in world.priorities) else None,
        owner="alice",
        tags=["vpn"],
    )
    number = detail.number
    numbers.append(number)
    clk.advance(minutes=7)
    alice.read(number)
    clk.advance(minutes=18)
    alice.ask(
        number,
        "bob",
        "Bob, you rolled out the new VPN profile yesterday. Could the split tunnel be "
        "missing the file server subnet for this customer?",
    )
    clk.advance(minutes=41)
    bob.read(number)
    clk.advance(minutes=23)
    bob.reply(
        number,
        f"Hi {phone_customer.first},\n\nthe new VPN profile was missing the route to your "
        "file server. I have corrected it; please disconnect and connect the VPN again and "
        "the shares will be back.\n\nBest regards,\nBob",
        time_spent=1500,
    )
    clk.advance(hours=3, minutes=12)
    bob.close(number)
    if count > 1:
        clk.set(start + timedelta(days=1, minutes=35))
        numbers.append(_mail_story(store, world, clk, desk))
    _mark_story_mail_sent(store, numbers)
    return numbers


def _mail_story(store: Store, world: _World, clk: FixedClock, desk: Callable[[str], Any]) -> int:
    """A mail request, forwarded to a supplier, answered by them, replied to and closed."""
    customer = world.customers[1 % len(world.customers)]
    printers = world.categories.get("Printers") or next(iter(world.categories.values()))
    normal = next((p for p in world.priorities if p.name == "Normal"), world.priorities[0])
    title = "Printer on the 2nd floor prints every page twice"
    body = (
        "Hello,\n\nsince Monday our Kyocera on the 2nd floor prints every page twice, even "
        "for one-page documents. We have tried from three different PCs.\n\nCould you have "
        f"someone look at it?\n\nBest regards,\n{customer.name}\n{customer.company}"
    )
    msg_id = f"<{clk.now():%Y%m%d%H%M%S}.4f2a9c@{customer.domain}>"

    def register(s: Session) -> int:
        now = clk.now()
        status = world.statuses["open"]
        ticket = M.Ticket(
            title=title,
            status_id=status.id,
            category_id=printers.id,
            priority_id=normal.id,
            mailbox_id=world.mailbox_id,
            created_at=now,
            updated_at=now,
            counter_since=now,
            read_status="red",
            deadline_at=_from_ts(normal.work.add(now.timestamp(), normal.deadline_minutes * 60))
            if normal.deadline_minutes
            else None,
            escalation_running=bool(normal.levels and normal.deadline_minutes),
            message_count=1,
        )
        ticket.next_alert_at = ticket.deadline_at if ticket.escalation_running else None
        s.add(ticket)
        s.flush()
        s.add(M.TicketCustomer(ticket_id=ticket.id or 0, customer_id=customer.id))
        s.add(
            M.Message(
                ticket_id=ticket.id or 0,
                direction="in",
                visibility="external",
                kind="customer",
                from_addr=customer.addrs[0],
                from_name=customer.name,
                to_addrs=[world.support_address],
                subject=title,
                body_text=body,
                raw_headers=_headers(
                    customer.name,
                    customer.addrs[0],
                    world.support_address,
                    title,
                    now,
                    msg_id,
                    "",
                    "",
                ),
                rfc_message_id=msg_id,
                thread_rule="new",
                thread_evidence="no known Message-ID, subject tag or sender thread",
                created_at=now,
            )
        )
        s.add(M.TicketTag(ticket_id=ticket.id or 0, tag="printer"))
        s.add(
            M.TicketEvent(
                ticket_id=ticket.id,
                at=now,
                action="create",
                after={
                    "title": title,
                    "owner": None,
                    "priority": normal.name,
                    "category": printers.name,
                    "via": "mail",
                },
            )
        )
        return ticket.id or 0

    number = store.write(register)
    carol = desk("carol")
    clk.advance(minutes=26)
    carol.take(number)
    carol.read(number)
    clk.advance(minutes=9)
    fwd = carol.forward(
        number,
        "service@printcare.example.net",
        "Hi,\n\ncould you look at this for us? The printer is covered by our service "
        "agreement (contract SA-20417).\n\nBest regards,\nCarol",
    )
    clk.advance(hours=5, minutes=48)

    def supplier_answers(s: Session) -> None:
        now = clk.now()
        ticket = s.get(M.Ticket, number)
        assert ticket is not None
        answer_id = f"<{now:%Y%m%d%H%M%S}.77b1@printcare.example.net>"
        s.add(
            M.Message(
                ticket_id=number,
                direction="in",
                visibility="internal",
                kind="external",
                from_addr="service@printcare.example.net",
                from_name="Printcare Service",
                to_addrs=[world.support_address],
                subject=f"Re: Fwd: {title}",
                body_text=(
                    "Hello Carol,\n\nthis is a known fault in firmware 2.3 (duplex unit "
                    "reports a false retry). We have pushed firmware 2.4 to the printer "
                    "remotely; it prints normally again.\n\nRegards,\nPrintcare Service Desk\n\n"
                    "> could you look at this for us? The printer is covered by our service\n"
                    "> agreement (contract SA-20417)."
                ),
                raw_headers=_headers(
                    "Printcare Service",
                    "service@printcare.example.net",
                    world.support_address,
                    f"Re: Fwd: {title}",
                    now,
                    answer_id,
                    fwd.rfc_message_id,
                    fwd.rfc_message_id,
                ),
                rfc_message_id=answer_id,
                in_reply_to=fwd.rfc_message_id,
                references=fwd.rfc_message_id,
                thread_rule="message-id",
                thread_evidence=f"In-Reply-To {fwd.rfc_message_id} is our forward",
                created_at=now,
            )
        )
        # As the intake does: new information turns the owner's light yellow, the supplier's
        # answer ends the wait on them, and the counters move on.
        since = ticket.counter_since or now
        ticket.external_seconds += int((now - since).total_seconds())
        ticket.external_work_seconds += normal.work.between(since.timestamp(), now.timestamp())
        ticket.counter_since = now
        ticket.status_id = world.statuses["open"].id
        ticket.message_count += 1
        ticket.read_status = "yellow"
        ticket.updated_at = now
        ticket.version += 1

    store.write(supplier_answers)
    clk.advance(minutes=31)
    carol.read(number)
    clk.advance(minutes=4)
    carol.reply(
        number,
        f"Hi {customer.first},\n\nour printer supplier found a known firmware fault and has "
        "updated the printer remotely. It should print each page once again; please let "
        "us know if it does not.\n\nBest regards,\nCarol",
        time_spent=600,
    )
    clk.advance(days=1, hours=2)
    carol.close(number)
    return number


def _mark_story_mail_sent(store: Store, numbers: list[int]) -> None:
    """The stories happened long ago: their mail went out then, and must never go out now."""

    def fn(s: Session) -> None:
        for item in s.exec(select(M.Outbox).where(col(M.Outbox.ticket_id).in_(numbers))).all():
            item.state = "sent"
            item.attempts = 1
            item.sent_at = item.created_at + timedelta(seconds=3)
            item.next_attempt_at = None
            s.add(item)

    store.write(fn)


def _count_messages(store: Store, numbers: list[int]) -> int:
    with store.read() as s:
        return int(
            s.exec(
                select(sa.func.count())
                .select_from(M.Message)
                .where(col(M.Message.ticket_id).in_(numbers))
            ).one()
        )


def _statuses_of(store: Store, numbers: list[int]) -> list[str]:
    with store.read() as s:
        return list(
            s.exec(
                select(M.Status.name)
                .join(M.Ticket, col(M.Ticket.status_id) == col(M.Status.id))
                .where(col(M.Ticket.id).in_(numbers))
            ).all()
        )


def _weekday_morning(moment: datetime, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz)
    while local.weekday() >= 5:
        local += timedelta(days=1)
    return local.replace(hour=9, minute=42, second=0, microsecond=0).astimezone(UTC)


def _from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


def _headers(
    name: str,
    addr: str,
    to: str,
    subject: str,
    at: datetime,
    msg_id: str,
    in_reply_to: str,
    references: str,
) -> str:
    lines = [
        f"From: {name} <{addr}>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(at)}",
        f"Message-ID: {msg_id}",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    lines.append("MIME-Version: 1.0")
    lines.append("Content-Type: text/plain; charset=utf-8")
    return "\n".join(lines)


# ============================================================================ the simulation


@dataclass
class _Counts:
    tickets: int
    messages: int
    by_status: dict[str, int]


@dataclass(slots=True, eq=False)
class _T:
    """One simulated ticket while its history is written."""

    id: int
    role: str  # the status it ends in: open internal external postponed closed deleted merged
    topic: _Topic
    created: float
    customers: list[_Customer]
    lang: str
    category: _Category
    priority: _Priority
    ctx: dict[str, str]
    title: str = ""
    status: str = "open"
    owner: _Agent | None = None
    read_status: str = "red"
    first_read: float | None = None
    replied_at: float | None = None
    first_reply: int | None = None
    first_reply_work: int | None = None
    reply_count: int = 0
    closed_at: float | None = None
    close_s: int | None = None
    close_work: int | None = None
    activate_at: float | None = None
    merged_into: int | None = None
    needs_review: bool = False
    counter_since: float = 0.0
    updated: float = 0.0
    version: int = 1
    last_customer: str = ""
    deadline: float | None = None
    escalating: bool = False
    alert_level: int = 0
    next_alert: float | None = None
    counters: dict[str, int] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    said: set[str] = field(default_factory=set)  # texts used, so a thread does not repeat


class _Chunk:
    """Rows for one write transaction, inserted parent tables first."""

    def __init__(self) -> None:
        self.tickets: list[_T] = []
        self.customer_links: list[dict[str, Any]] = []
        self.tags: list[dict[str, Any]] = []
        self.followers: list[dict[str, Any]] = []
        self.parties: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.by_status: dict[str, int] = {}
        self.seen_links: set[tuple[int, int | str]] = set()  # followers and parties, once

    def insert(self, s: Session) -> _Counts:
        conn = s.connection()
        messages: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for t in self.tickets:
            messages.extend(t.messages)
            events.extend(t.events)
        # Ids in the order they were handed out keep the table's b-tree appends cheap.
        messages.sort(key=lambda m: int(m["id"]))
        events.sort(key=lambda e: int(e["id"]))
        for table, rows in (
            (M.Ticket, self.rows),
            (M.TicketCustomer, self.customer_links),
            (M.TicketTag, self.tags),
            (M.Follower, self.followers),
            (M.ExternalParty, self.parties),
            (M.Message, messages),
            (M.TicketEvent, events),
            (M.Alert, self.alerts),
            (M.Outbox, self.outbox),
        ):
            for batch in _batches(rows, 5000):
                conn.execute(sa.insert(table), batch)
        sync_id_sequences(conn, ("ticket", "message", "ticketevent", "alert", "outbox"))
        return _Counts(len(self.rows), len(messages), dict(self.by_status))


class _Simulation:
    """Writes plausible histories for many tickets without going through the Desk."""

    def __init__(
        self, store: Store, world: _World, rng: random.Random, secret: bytes, now: datetime
    ) -> None:
        self.world = world
        self.rng = rng
        self.secret = secret
        self.now = now.timestamp()
        self.statuses = world.statuses
        with store.read() as s:
            self.next_ticket = _next_id(s, M.Ticket)
            self.next_message = _next_id(s, M.Message)
            self.next_event = _next_id(s, M.TicketEvent)
            self.next_alert = _next_id(s, M.Alert)
            self.next_outbox = _next_id(s, M.Outbox)
            self.active_counts: dict[int, int] = dict(
                s.exec(  # type: ignore[arg-type]
                    select(M.Ticket.owner_id, sa.func.count())
                    .join(M.Status, col(M.Status.id) == col(M.Ticket.status_id))
                    .where(M.Status.base == "active", col(M.Ticket.owner_id).is_not(None))
                    .group_by(col(M.Ticket.owner_id))
                ).all()
            )
        self.topics = [t for t in TOPICS if t["category"] in world.categories] or list(TOPICS)
        self.prio_weights = self._priority_weights()
        self.outbox_since = self.now - 7 * 86400
        self.sent_count = 0

    def _priority_weights(self) -> list[float]:
        known = {"Low": 20.0, "Normal": 60.0, "High": 15.0, "Urgent": 5.0}
        return [known.get(p.name, 10.0) for p in self.world.priorities]

    # ---------------------------------------------------------------- schedule

    def chunks(self, count: int) -> Iterator[_Chunk]:
        created = sorted(self._created_time() for _ in range(count))
        for start in range(0, count, CHUNK_TICKETS):
            chunk = _Chunk()
            for ts in created[start : start + CHUNK_TICKETS]:
                self._ticket(chunk, ts)
            for t in chunk.tickets:
                chunk.rows.append(self._ticket_row(t))
                name = self.statuses[t.status].name
                chunk.by_status[name] = chunk.by_status.get(name, 0) + 1
            yield chunk

    def _created_time(self) -> float:
        """Mostly office hours on weekdays, some evenings, a few weekends."""
        rng, tz = self.rng, self.world.tz
        span = WINDOW_DAYS * 86400
        while True:
            ts = self.now - 120 - rng.random() * span
            local = datetime.fromtimestamp(ts, tz)
            weekday_ok = local.weekday() < 5
            office = 8 <= local.hour < 17
            accept = 1.0 if weekday_ok and office else 0.2 if weekday_ok else 0.1
            if rng.random() < accept:
                return float(int(ts))

    def _role(self, created: float) -> str:
        age_days = (self.now - created) / 86400
        if age_days < 2:
            weights: tuple[float, ...] = (45, 10, 8, 6, 23, 4, 4)
        elif age_days < 14:
            weights = (14, 6, 6, 9, 57, 4, 4)
        else:
            weights = (2, 1, 1, 4, 84, 4, 4)
        roles = ("open", "internal", "external", "postponed", "closed", "deleted", "merged")
        return self.rng.choices(roles, weights)[0]

    # ---------------------------------------------------------------- one ticket

    def _ticket(self, chunk: _Chunk, created: float) -> None:
        rng, world = self.rng, self.world
        role = self._role(created)
        target: _T | None = None
        if role == "merged":
            target = self._merge_target(chunk, created)
            if target is None:
                role = "closed"
        if target is not None:
            topic = target.topic
        elif role == "deleted" and rng.random() < 0.7:
            topic = SPAM
        else:
            topic = rng.choice(self.topics)
        customers = list(target.customers[:1]) if target is not None else self._pick_customers()
        junk = rng.choice(JUNK) if topic is SPAM else None
        if junk is not None and junk[2] is not None:
            customers = [self.world.junk_senders[junk[2][1]]]
        cust = customers[0]
        lang = cust.lang if rng.random() < 0.6 else "en"
        if not any(p.startswith(f"{lang}|") for p in topic["problem"]):
            lang = "en"  # no request text in that language: the whole ticket is in English
        t = _T(
            id=self.next_ticket,
            role=role,
            topic=topic,
            created=created,
            customers=customers,
            lang=lang,
            category=world.categories.get(topic["category"])
            or next(iter(world.categories.values())),
            priority=rng.choices(world.priorities, self.prio_weights)[0],
            ctx=self._context(cust, lang),
            counter_since=created,
            updated=created,
            counters={"queue": 0, "internal": 0, "external": 0},
        )
        self.next_ticket += 1
        title, problem = self._subject_and_problem(topic, t.lang)
        t.ctx["problem"] = problem
        if junk is not None:
            t.title = junk[0]
            t.ctx["junk"] = junk[1].format(**t.ctx)
        elif target is not None and rng.random() < 0.5:
            t.title = target.title
        else:
            t.title = title.format(**t.ctx)
        t.ctx["title"] = t.title
        chunk.tickets.append(t)
        for c in t.customers:
            chunk.customer_links.append({"ticket_id": t.id, "customer_id": c.id})
        self._create(chunk, t)
        self._history(chunk, t, target)
        self._finish_ticket(chunk, t)

    def _subject_and_problem(self, topic: _Topic, lang: str) -> tuple[str, str]:
        """A subject and a request text that belong together."""
        rng = self.rng
        problems = _problems(topic, lang)
        if lang == "en":
            i = rng.randrange(len(problems))
            pairs = SUBJECTS_FOR.get(topic["key"])
            choices = pairs[i] if pairs and i < len(pairs) else range(len(topic["en"]))
            return topic["en"][rng.choice(choices)], problems[i]
        subjects = topic.get(lang) or topic["en"]
        return subjects[SUBJECT_IN.get((topic["key"], lang), 0)], rng.choice(problems)

    def _pick_customers(self) -> list[_Customer]:
        customers = self.world.customers
        # A few customers write often: the square skews the pick towards the low indexes.
        i = int(len(customers) * self.rng.random() ** 2)
        first = customers[i]
        if self.rng.random() < 0.05 and first.company:
            near = customers[max(0, i - 40) : i + 40]
            same = [c for c in near if c.company == first.company and c.id != first.id]
            if same:
                return [first, self.rng.choice(same)]
        return [first]

    def _context(self, cust: _Customer, lang: str) -> dict[str, str]:
        rng = self.rng
        words = {**FILL, **FILL_BY_LANG.get(lang, {})}
        ctx = {key: rng.choice(values) for key, values in words.items()}
        ctx.update(
            first=cust.first,
            last=cust.last,
            company=cust.company,
            org=cust.company or cust.name,
            domain=cust.domain,
            inv=str(rng.randrange(100_000, 999_999)),
            order=f"SO-{rng.randrange(10_000, 99_999)}",
            amount=f"NOK {rng.randrange(2, 400) * 25:,}".replace(",", " "),
            track=f"70{rng.randrange(10**10, 10**11)}NO",
            n=str(rng.choice((3, 5, 8, 10, 12, 25))),
        )
        return ctx

    def _merge_target(self, chunk: _Chunk, created: float) -> _T | None:
        for t in reversed(chunk.tickets[-60:]):
            recent = created - t.created < 7 * 86400
            if t.role in ("open", "closed", "internal", "external") and recent:
                return t
        return None

    # ---------------------------------------------------------------- history

    def _history(self, chunk: _Chunk, t: _T, target: _T | None) -> None:
        rng = self.rng
        plan = self._plan(t)
        room = max(60.0, self.now - t.created - 60)
        total = sum(delay for _, delay in plan)
        scale = min(1.0, room / total) if total > 0 else 1.0
        at = t.created
        delays = [max(1.0, delay * scale) for _, delay in plan]
        remaining = sum(delays)
        for (step, _), delay in zip(plan, delays, strict=True):
            at += delay
            remaining -= delay
            if step not in CUSTOMER_STEPS:
                at = self._office(at, self.now - 30 - remaining)
            at = min(at, self.now - 30)
            getattr(self, f"_do_{step}")(chunk, t, at)
        if t.role == "merged" and target is not None:
            at = self._office(at + rng.uniform(600, 4 * 3600), self.now - 10)
            self._do_merge(chunk, t, target, min(self.now - 10, at))

    def _office(self, at: float, latest: float) -> float:
        """Agents act in office hours: a step at night or on a weekend waits for the morning,
        unless that morning would leave no time for the steps after it."""
        tz = self.world.tz
        local = datetime.fromtimestamp(at, tz)
        if local.weekday() < 5 and 8 <= local.hour < 17:
            return at
        day = local.date() + timedelta(days=1 if local.hour >= 8 else 0)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        morning = datetime.combine(day, time(8, 0), tz).timestamp() + self.rng.uniform(0, 5400)
        return morning if morning < latest else at

    def _quick(self) -> float:
        """An agent's pause: minutes to a few hours."""
        return self.rng.uniform(300, 3 * 3600)

    def _slow(self) -> float:
        """Someone outside the desk: hours, or a day or three."""
        if self.rng.random() < 0.5:
            return self.rng.uniform(1800, 8 * 3600)
        return self.rng.uniform(86400, 3 * 86400)

    def _plan(self, t: _T) -> list[tuple[str, float]]:
        """The steps of this ticket's life and the pause before each, in seconds."""
        rng, role = self.rng, t.role
        quick, slow = self._quick, self._slow
        plan: list[tuple[str, float]] = []
        if role == "merged":
            return [("followup", rng.uniform(3600, 86400))] if rng.random() < 0.3 else []
        if role == "deleted":
            if rng.random() < 0.5:
                plan.append(("read", quick()))
            return [*plan, ("delete", quick())]
        rounds = {
            "open": rng.choice((0, 0, 1, 1, 2)),
            "internal": rng.choice((0, 1)),
            "external": rng.choice((0, 1)),
            "postponed": rng.choice((0, 1, 1, 2)),
            "closed": rng.choice((1, 2, 2, 2, 3, 3)),
        }[role]
        if role == "open" and rounds == 0 and rng.random() < 0.3:
            plan.append(("read", quick()))
        for i in range(rounds):
            plan.append(("read", quick()))
            action = rng.choices(("reply", "note", "ask", "forward"), (70, 10, 10, 10))[0]
            plan.append((action, rng.uniform(60, 1800)))
            if action == "ask":
                plan.append(("answer_ask", quick()))
            elif action == "forward":
                plan.append(("supplier", slow()))
            elif action == "note":
                plan.append(("reply", rng.uniform(60, 3600)))
            last = i == rounds - 1
            if not last or (role == "open" and rng.random() < 0.5):
                plan.append(("followup", slow()))
        if role == "internal":
            plan += [("read", quick()), ("ask", rng.uniform(60, 1800))]
        elif role == "external":
            plan += [("read", quick()), ("forward", rng.uniform(60, 1800))]
        elif role == "postponed":
            plan += [
                ("read", quick()),
                ("postpone_reply", rng.uniform(60, 1800)),
                ("postpone", rng.uniform(10, 120)),
            ]
        elif role == "closed":
            if rng.random() < 0.6:
                plan.append(("thanks", slow()))
                plan.append(("closing_reply", quick()))
            plan.append(("close", rng.choice((rng.uniform(60, 900), slow()))))
        return plan

    # ---------------------------------------------------------------- rows

    def _event(
        self,
        t: _T,
        at: float,
        action: str,
        agent: _Agent | None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        *,
        touch: bool = True,
    ) -> None:
        t.events.append(
            {
                "id": self.next_event,
                "ticket_id": t.id,
                "agent_id": agent.id if agent else None,
                "os_user": agent.login if agent else "",
                "at": _from_ts(at),
                "action": action,
                "before": before or {},
                "after": after or {},
                "undone": False,
            }
        )
        self.next_event += 1
        if touch:
            t.updated = max(t.updated, at)
            t.version += 1

    def _message(
        self,
        t: _T,
        at: float,
        *,
        direction: str,
        visibility: str,
        kind: str,
        author: _Agent | None = None,
        from_addr: str = "",
        from_name: str = "",
        to: Sequence[str] = (),
        cc: Sequence[str] = (),
        subject: str = "",
        body: str = "",
        raw_headers: str = "",
        rfc: str = "",
        in_reply_to: str = "",
        references: str = "",
        rule: str = "",
        evidence: str = "",
        spent: int = 0,
        review: str = "",
    ) -> dict[str, Any]:
        row = {
            "id": self.next_message,
            "ticket_id": t.id,
            "direction": direction,
            "visibility": visibility,
            "kind": kind,
            "author_agent_id": author.id if author else None,
            "from_addr": from_addr,
            "from_name": from_name,
            "to_addrs": list(to),
            "cc_addrs": list(cc),
            "subject": subject,
            "body_text": body,
            "body_html": "",
            "raw_headers": raw_headers,
            "rfc_message_id": rfc,
            "in_reply_to": in_reply_to,
            "references": references,
            "thread_rule": rule,
            "thread_evidence": evidence,
            "time_spent_seconds": spent,
            "needs_review": bool(review),
            "review_error": review,
            "created_at": _from_ts(at),
        }
        self.next_message += 1
        t.messages.append(row)
        t.updated = max(t.updated, at)
        return row

    def _our_id(self, t: _T, msg: dict[str, Any]) -> str:
        rfc = make_message_id(t.id, msg["id"], self.secret, self.world.domain)
        msg["rfc_message_id"] = rfc
        return rfc

    def _snapshot(self, t: _T) -> dict[str, Any]:
        return {
            "status_id": self.statuses[t.status].id,
            "owner_id": t.owner.id if t.owner else None,
            "priority_id": t.priority.id,
            "category_id": t.category.id,
            "activate_at": _from_ts(t.activate_at).isoformat() if t.activate_at else None,
            "merged_into_id": t.merged_into,
            "closed_at": _from_ts(t.closed_at).isoformat() if t.closed_at else None,
        }

    def _set_status(self, t: _T, role: str, at: float) -> None:
        """Add the time since the last change to the running counter, as Desk._accrue does."""
        bucket = self.statuses[t.status].counter
        if bucket in t.counters and at > t.counter_since:
            wall = int(at - t.counter_since)
            work = t.priority.work.between(t.counter_since, at)
            t.counters[bucket] += wall
            t.counters[bucket + "_work"] = t.counters.get(bucket + "_work", 0) + work
        t.counter_since = at
        t.status = role
        if self.statuses[role].base == "closed":
            t.closed_at = at
            t.close_s = int(at - t.created)
            t.close_work = t.priority.work.between(t.created, at)
        if self.statuses[role].base != "postponed":
            t.activate_at = None

    def _start_clock(self, t: _T, at: float) -> None:
        p = t.priority
        if p.deadline_minutes <= 0:
            t.deadline = None
            t.escalating = False
            return
        t.deadline = p.work.add(at, p.deadline_minutes * 60)
        t.escalating = bool(p.levels)
        t.alert_level = 0

    def _actor(self, t: _T) -> _Agent:
        """Who acts on the ticket: its owner, or one of the category's agents."""
        return t.owner or self.rng.choice(t.category.agents)

    def _take(self, t: _T, at: float) -> _Agent:
        """The owner, after a category agent took the ticket if it had none."""
        if t.owner is not None:
            return t.owner
        agent = self.rng.choice(t.category.agents)
        before = self._snapshot(t)
        t.owner = agent
        self._event(t, at, "take", agent, before, {**self._snapshot(t), "owner": agent.login})
        return agent

    def _assign_on_create(self, t: _T) -> _Agent | None:
        cat = t.category
        if cat.method == "round_robin" and cat.agents:
            agent = cat.agents[cat.rr_next % len(cat.agents)]
            cat.rr_next += 1
            return agent
        if cat.method == "fewest_active" and cat.agents:
            return min(cat.agents, key=lambda a: (self.active_counts.get(a.id, 0), a.id))
        return None

    # ---------------------------------------------------------------- steps

    def _create(self, chunk: _Chunk, t: _T) -> None:
        rng, world = self.rng, self.world
        cust = t.customers[0]
        t.owner = self._assign_on_create(t)
        self._start_clock(t, t.created)
        phone = t.topic is not SPAM and t.role != "merged" and rng.random() < 0.12
        problem = t.ctx["problem"]
        if t.role == "merged":
            problem = "Sorry to write again, I have not heard anything yet.\n\n" + problem
        body = self._customer_body(t, problem, cust)
        if t.topic is SPAM:
            body = t.ctx["junk"]
        actor: _Agent | None = None
        if phone:
            actor = t.owner or rng.choice(t.category.agents)
            t.owner = t.owner or actor
            said = t.ctx["problem"].format(**t.ctx)
            note = (
                f"{cust.first} called about this:\n\n{said}\n\nBest reached by phone before 15:00."
            )
            self._message(
                t,
                t.created,
                direction="in",
                visibility="external",
                kind="phone",
                author=actor,
                from_addr=cust.addrs[0],
                from_name=cust.name,
                subject=t.title,
                body=note,
                rule="manual",
                evidence=f"registered by {actor.login} (phone)",
            )
        else:
            rfc = self._their_id(t.created, cust)
            cc = [c.addrs[0] for c in t.customers[1:]]
            review = ""
            if rng.random() < 0.004 and t.topic is not SPAM:
                review = rng.choice(REVIEW_ERRORS)
                t.needs_review = True
            self._message(
                t,
                t.created,
                direction="in",
                visibility="external",
                kind="customer",
                from_addr=cust.addrs[0],
                from_name=cust.name,
                to=[world.support_address],
                cc=cc,
                subject=t.title,
                body=body,
                raw_headers=_headers(
                    cust.name,
                    cust.addrs[0],
                    world.support_address,
                    t.title,
                    _from_ts(t.created),
                    rfc,
                    "",
                    "",
                ),
                rfc=rfc,
                rule="new",
                evidence="no known Message-ID, subject tag or sender thread",
                review=review,
            )
            t.last_customer = rfc
        self._event(
            t,
            t.created,
            "create",
            actor,
            {},
            {
                "title": t.title,
                "owner": t.owner.login if t.owner else None,
                "priority": t.priority.name,
                "category": t.category.name,
                "via": "phone" if phone else "mail",
            },
            touch=False,
        )
        if t.topic is not SPAM and rng.random() < 0.7:
            chunk.tags.append({"ticket_id": t.id, "tag": t.topic["tag"]})
        if rng.random() < 0.12:
            tag = rng.choice(EXTRA_TAGS)
            if tag != t.topic["tag"]:
                chunk.tags.append({"ticket_id": t.id, "tag": tag})

    def _their_id(self, at: float, cust: _Customer) -> str:
        stamp = _from_ts(at).strftime("%Y%m%d%H%M%S")
        return f"<{stamp}.{self.rng.getrandbits(40):010x}@{cust.addrs[0].split('@')[1]}>"

    def _customer_body(self, t: _T, text: str, cust: _Customer) -> str:
        rng = self.rng
        lang = t.lang
        greet = rng.choice(GREETING[lang])
        sign = rng.choice(SIGN_OFF[lang]).format(**t.ctx).rstrip()
        return f"{greet}\n\n{text.format(**t.ctx)}\n\n{sign}"

    def _agent_body(self, t: _T, text: str, agent: _Agent, lang: str) -> str:
        greet = AGENT_GREETING[lang].format(first=t.customers[0].first)
        sign = self.rng.choice(AGENT_SIGN_OFF[lang]).format(agent=agent.first)
        return f"{greet}\n\n{text.format(**t.ctx)}\n\n{sign}"

    def _do_read(self, chunk: _Chunk, t: _T, at: float) -> None:
        agent = self._take(t, at - 5)
        if t.read_status != "green":
            before_status = t.read_status
            t.read_status = "green"
            if t.first_read is None:
                t.first_read = at
            self._event(
                t, at, "read", agent, {"read_status": before_status}, {"read_status": "green"}
            )

    def _reply(
        self, chunk: _Chunk, t: _T, at: float, text: str, *, spent: int = 0, lang: str = "en"
    ) -> None:
        agent = self._take(t, at - 10)
        to = [c.addrs[0] for c in t.customers]
        refs = t.last_customer or ""
        body = self._agent_body(t, text, agent, lang)
        msg = self._message(
            t,
            at,
            direction="out",
            visibility="external",
            kind="reply",
            author=agent,
            from_addr=self.world.support_address,
            from_name=agent.name,
            to=to,
            subject=f"Re: {t.title}",
            body=body,
            in_reply_to=refs,
            references=refs,
            spent=spent,
        )
        self._our_id(t, msg)
        first = t.replied_at is None
        if first:
            t.replied_at = at
            t.first_reply = int(at - t.created)
            t.first_reply_work = t.priority.work.between(t.created, at)
        t.reply_count += 1
        if self.statuses[t.status].base == "postponed":
            self._set_status(t, "open", at)
        self._event(t, at, "reply", agent, {}, {"message_id": msg["id"], "first": first})
        self._outbox(chunk, t, msg, "reply", to, body + f"\n\n-- \n{agent.signature}")

    def _fresh(self, t: _T, *pools: Sequence[str]) -> str:
        """A text from the first pool with one this thread has not used yet."""
        for pool in pools:
            unused = [x for x in pool if x not in t.said]
            if unused:
                text = self.rng.choice(unused)
                t.said.add(text)
                return text
        return self.rng.choice(pools[-1])

    def _do_reply(self, chunk: _Chunk, t: _T, at: float) -> None:
        text = self._fresh(t, t.topic["reply"], MORE_REPLIES)
        self._reply(chunk, t, at, text, spent=self.rng.choice((0, 0, 300, 600, 900, 1800)))

    def _do_closing_reply(self, chunk: _Chunk, t: _T, at: float) -> None:
        lang = t.lang if t.lang in CLOSING_REPLY else "en"
        self._reply(chunk, t, at, self.rng.choice(CLOSING_REPLY[lang]), lang=lang)

    def _do_postpone_reply(self, chunk: _Chunk, t: _T, at: float) -> None:
        self._reply(chunk, t, at, self.rng.choice(POSTPONE_REPLY))

    def _do_note(self, chunk: _Chunk, t: _T, at: float) -> None:
        agent = self._take(t, at - 10)
        text = self.rng.choice(t.topic["note"] + NOTES).format(**t.ctx)
        msg = self._message(
            t,
            at,
            direction="out",
            visibility="internal",
            kind="note",
            author=agent,
            from_addr=agent.email,
            from_name=agent.name,
            subject=f"Note on #{t.id}",
            body=text,
            spent=self.rng.choice((0, 300, 900)),
        )
        self._event(t, at, "note", agent, {}, {"message_id": msg["id"]})

    def _do_ask(self, chunk: _Chunk, t: _T, at: float) -> None:
        asker = self._take(t, at - 10)
        pool = [a for a in self.world.agents if a is not asker]
        other = self.rng.choice([a for a in t.category.agents if a is not asker] or pool)
        before = self._snapshot(t)
        text = self.rng.choice(ASKS).format(colleague=other.first, **t.ctx)
        msg = self._message(
            t,
            at,
            direction="out",
            visibility="internal",
            kind="ask",
            author=asker,
            from_addr=asker.email,
            from_name=asker.name,
            to=[other.email],
            subject=f"{asker.name} asks {other.name} about #{t.id}",
            body=text,
        )
        t.owner = other
        t.read_status = "red"
        self._set_status(t, "internal", at)
        if (t.id, asker.id) not in chunk.seen_links:
            chunk.seen_links.add((t.id, asker.id))
            chunk.followers.append({"ticket_id": t.id, "agent_id": asker.id, "kind": "follow"})
        self._event(
            t,
            at,
            "ask",
            asker,
            before,
            {**self._snapshot(t), "asked": other.login, "message_id": msg["id"]},
        )
        if t.role == "internal":
            chunk.alerts.append(
                self._alert(other, t, "asked", 0, f"{asker.name} asks for your help on #{t.id}", at)
            )

    def _do_answer_ask(self, chunk: _Chunk, t: _T, at: float) -> None:
        self._do_read(chunk, t, at - 60)
        agent = self._take(t, at - 60)
        if self.rng.random() < 0.5:
            text = self.rng.choice(ASK_ANSWERS).format(**t.ctx)
            msg = self._message(
                t,
                at,
                direction="out",
                visibility="internal",
                kind="note",
                author=agent,
                from_addr=agent.email,
                from_name=agent.name,
                subject=f"Note on #{t.id}",
                body=text,
                spent=600,
            )
            self._event(t, at, "note", agent, {}, {"message_id": msg["id"]})
        else:
            self._do_reply(chunk, t, at)
        before = self._snapshot(t)
        self._set_status(t, "open", at + 30)
        self._event(t, at + 30, "status", agent, before, {**self._snapshot(t), "status": "open"})

    def _do_forward(self, chunk: _Chunk, t: _T, at: float) -> None:
        agent = self._take(t, at - 10)
        supplier = t.topic.get("supplier") or "service@printcare.example.net"
        first = next((m for m in t.messages if m["direction"] == "in"), None)
        body = (
            f"Hi,\n\ncould you help us with this one? The customer is {t.ctx['org']}.\n\n"
            f"Best regards,\n{agent.first}"
        )
        if first is not None:
            body += (
                f"\n\n---------- Forwarded message ----------\nFrom: {first['from_name']} "
                f"<{first['from_addr']}>\nSubject: {first['subject']}\n\n{first['body_text']}"
            )
        msg = self._message(
            t,
            at,
            direction="out",
            visibility="internal",
            kind="forward",
            author=agent,
            from_addr=self.world.support_address,
            from_name=agent.name,
            to=[supplier],
            subject=f"Fwd: {t.title}",
            body=body,
        )
        self._our_id(t, msg)
        if (t.id, supplier) not in chunk.seen_links:
            chunk.seen_links.add((t.id, supplier))
            chunk.parties.append({"ticket_id": t.id, "address": supplier})
        before = self._snapshot(t)
        self._set_status(t, "external", at)
        self._event(
            t,
            at,
            "forward",
            agent,
            before,
            {**self._snapshot(t), "to": supplier, "message_id": msg["id"]},
        )
        self._outbox(chunk, t, msg, "forward", [supplier], body)

    def _do_supplier(self, chunk: _Chunk, t: _T, at: float) -> None:
        forward = next((m for m in reversed(t.messages) if m["kind"] == "forward"), None)
        if forward is None:
            return
        supplier = forward["to_addrs"][0]
        name = supplier.split("@")[1].split(".")[0].capitalize() + " Service"
        answers = t.topic.get("answer") or ("We have looked into it and fixed it on our side.",)
        text = self.rng.choice(answers).format(**t.ctx)
        quoted = "\n".join("> " + line for line in forward["body_text"].splitlines()[:4])
        rfc = (
            f"<{_from_ts(at):%Y%m%d%H%M%S}.{self.rng.getrandbits(32):08x}@{supplier.split('@')[1]}>"
        )
        their = forward["rfc_message_id"]
        subject = f"Re: {forward['subject']}"
        self._message(
            t,
            at,
            direction="in",
            visibility="internal",
            kind="external",
            from_addr=supplier,
            from_name=name,
            to=[self.world.support_address],
            subject=subject,
            body=f"Hello,\n\n{text}\n\nRegards,\n{name}\n\n{quoted}",
            raw_headers=_headers(
                name, supplier, self.world.support_address, subject, _from_ts(at), rfc, their, their
            ),
            rfc=rfc,
            in_reply_to=their,
            references=their,
            rule="message-id",
            evidence=f"In-Reply-To {their} is our forward",
        )
        # As the intake does: yellow for the owner, the wait on the supplier is over.
        if t.read_status == "green":
            t.read_status = "yellow"
        if t.status == "external":
            self._set_status(t, "open", at)
        t.version += 1

    def _do_followup(self, chunk: _Chunk, t: _T, at: float) -> None:
        self._customer_mail(t, at, thanks=False)

    def _do_thanks(self, chunk: _Chunk, t: _T, at: float) -> None:
        self._customer_mail(t, at, thanks=True)

    def _customer_mail(self, t: _T, at: float, *, thanks: bool) -> None:
        """The customer writes again: more news, or thanks; often quoting our last reply."""
        rng = self.rng
        cust = t.customers[0]
        lang = t.lang if t.lang in FOLLOWUP else "en"
        own = [x for x in t.topic["followup"] if x.startswith("ok|") == thanks]
        pool = [x.removeprefix("ok|") for x in own] if lang == "en" else []
        text = self._fresh(t, pool, (THANKS if thanks else FOLLOWUP)[lang])
        last_reply = next((m for m in reversed(t.messages) if m["kind"] == "reply"), None)
        body = self._customer_body(t, text, cust)
        in_reply_to = references = t.last_customer
        rule = "message-id"
        evidence = f"In-Reply-To {in_reply_to} is a message of #{t.id}"
        if last_reply is not None:
            ours = last_reply["rfc_message_id"]
            in_reply_to = ours
            references = " ".join(x for x in (last_reply["in_reply_to"], ours) if x)
            rule, evidence = "message-id", f"In-Reply-To {ours} is our reply"
            if rng.random() < 0.6:
                when = format_datetime(last_reply["created_at"])
                quoted = "\n".join("> " + ln for ln in last_reply["body_text"].splitlines())
                body += f"\n\nOn {when}, {last_reply['from_name']} wrote:\n{quoted}"
        subject = f"Re: {t.title}"
        rfc = self._their_id(at, cust)
        review = ""
        if rng.random() < 0.004:
            review = rng.choice(REVIEW_ERRORS)
            t.needs_review = True
        sender = cust.addrs[-1] if rng.random() < 0.1 else cust.addrs[0]
        self._message(
            t,
            at,
            direction="in",
            visibility="external",
            kind="customer",
            from_addr=sender,
            from_name=cust.name,
            to=[self.world.support_address],
            subject=subject,
            body=body,
            raw_headers=_headers(
                cust.name,
                sender,
                self.world.support_address,
                subject,
                _from_ts(at),
                rfc,
                in_reply_to,
                references,
            ),
            rfc=rfc,
            in_reply_to=in_reply_to,
            references=references,
            rule=rule,
            evidence=evidence,
            review=review,
        )
        t.last_customer = rfc
        if t.read_status == "green":
            t.read_status = "yellow"
        t.version += 1

    def _do_close(self, chunk: _Chunk, t: _T, at: float) -> None:
        agent = self._actor(t)
        before = self._snapshot(t)
        self._set_status(t, "closed", at)
        t.escalating = False
        t.next_alert = None
        t.read_status = "green"
        self._event(t, at, "close", agent, before, self._snapshot(t))

    def _do_postpone(self, chunk: _Chunk, t: _T, at: float) -> None:
        agent = self._actor(t)
        before = self._snapshot(t)
        if self.rng.random() < 0.25:
            until = at + (self.now - at) * self.rng.uniform(0.3, 0.9)  # due: the worker wakes it
        else:
            until = self.now + self.rng.uniform(3600, 21 * 86400)
        until = float(int(max(until, at + 60)))
        self._set_status(t, "postponed", at)
        t.activate_at = until
        self._event(
            t,
            at,
            "postpone",
            agent,
            before,
            {**self._snapshot(t), "until": _from_ts(until).isoformat()},
        )

    def _do_delete(self, chunk: _Chunk, t: _T, at: float) -> None:
        agent = self._actor(t)
        before = self._snapshot(t)
        self._set_status(t, "deleted", at)
        t.escalating = False
        t.next_alert = None
        self._event(t, at, "delete", agent, before, self._snapshot(t))

    def _do_merge(self, chunk: _Chunk, t: _T, target: _T, at: float) -> None:
        """As Desk.merge: the messages move to the survivor, the old number points at it."""
        agent = target.owner or self.rng.choice(t.category.agents)
        moved = [m["id"] for m in t.messages]
        for m in t.messages:
            m["ticket_id"] = target.id
            m["thread_rule"] = "merge"
            m["thread_evidence"] = f"merged from #{t.id} by {agent.login}"
        target.messages.extend(t.messages)
        t.messages = []
        before = self._snapshot(t)
        self._set_status(t, "merged", at)
        t.merged_into = target.id
        t.escalating = False
        t.next_alert = None
        self._event(
            t,
            at,
            "merge",
            agent,
            before,
            {**self._snapshot(t), "into": target.id, "messages": moved, "customers": []},
        )
        self._event(target, at, "merged_in", agent, {}, {"from": t.id, "messages": moved})
        if target.read_status == "green":
            target.read_status = "yellow"

    def _alert(
        self, agent: _Agent, t: _T, kind: str, level: int, text: str, at: float
    ) -> dict[str, Any]:
        read = self.rng.random() < 0.5 and self.now - at > 3600
        row = {
            "id": self.next_alert,
            "agent_id": agent.id,
            "ticket_id": t.id,
            "kind": kind,
            "level": level,
            "text": text,
            "created_at": _from_ts(at),
            "read_at": _from_ts(at + 600) if read else None,
        }
        self.next_alert += 1
        return row

    def _outbox(
        self, chunk: _Chunk, t: _T, msg: dict[str, Any], kind: str, to: list[str], body: str
    ) -> None:
        """Only the last week's mail is still in the outbox; all of it sent (or failed), so the
        worker never sends demo mail."""
        at = msg["created_at"].timestamp()
        if at < self.outbox_since:
            return
        self.sent_count += 1
        failed = self.sent_count % 97 == 0
        headers = {"To": ", ".join(to)}
        if msg["in_reply_to"]:
            headers["In-Reply-To"] = msg["in_reply_to"]
            headers["References"] = msg["references"]
        chunk.outbox.append(
            {
                "id": self.next_outbox,
                "ticket_id": t.id,
                "message_id": msg["id"],
                "kind": kind,
                "state": "failed" if failed else "sent",
                "attempts": 5 if failed else 1,
                "next_attempt_at": None,
                "last_error": SMTP_FAILURE.format(addr=to[0]) if failed else "",
                "rfc_message_id": msg["rfc_message_id"],
                "mail_from": msg["from_addr"],
                "recipients": to,
                "subject": msg["subject"],
                "body": body,
                "headers": headers,
                "attachment_ids": [],
                "raw": None,
                "ambiguous": False,
                "claimed_by": "",
                "claimed_at": None,
                "created_at": msg["created_at"],
                "sent_at": None if failed else _from_ts(at + self.rng.uniform(1, 40)),
            }
        )
        self.next_outbox += 1

    # ---------------------------------------------------------------- the end state

    def _finish_ticket(self, chunk: _Chunk, t: _T) -> None:
        """Deadline, escalation and alerts as they stand now, for tickets still active."""
        base = self.statuses[t.status].base
        if base == "active" and t.owner is not None:
            self.active_counts[t.owner.id] = self.active_counts.get(t.owner.id, 0) + 1
        if base != "active" or t.deadline is None or not t.escalating:
            t.escalating = False
            t.next_alert = None
            return
        # As escalation_plan: level 1 at the deadline, each next one the previous level's
        # minutes later (in working time only if the priority says so).
        p = t.priority
        level, next_at, fires = 0, None, t.deadline
        for k, (alert_level, minutes) in enumerate(p.levels):
            if fires > self.now:
                next_at = fires
                break
            level = alert_level
            if t.owner is not None:
                chunk.alerts.append(
                    self._alert(
                        t.owner,
                        t,
                        "escalation",
                        alert_level,
                        f"#{t.id} is overdue (level {alert_level}): {t.title}",
                        fires,
                    )
                )
            if k + 1 < len(p.levels):
                fires = p.work.add(fires, minutes * 60) if p.only_in_hours else fires + minutes * 60
        t.alert_level = level
        t.next_alert = next_at
        t.escalating = next_at is not None

    def _ticket_row(self, t: _T) -> dict[str, Any]:
        c = t.counters
        status = self.statuses[t.status]
        return {
            "id": t.id,
            "title": t.title,
            "status_id": status.id,
            "category_id": t.category.id,
            "priority_id": t.priority.id,
            "owner_id": t.owner.id if t.owner else None,
            "mailbox_id": self.world.mailbox_id,
            "created_at": _from_ts(t.created),
            "updated_at": _from_ts(t.updated),
            "deadline_at": _from_ts(t.deadline) if t.deadline else None,
            "activate_at": _from_ts(t.activate_at) if t.activate_at else None,
            "merged_into_id": t.merged_into,
            "linked_to_id": None,
            "replied_at": _from_ts(t.replied_at) if t.replied_at else None,
            "closed_at": _from_ts(t.closed_at) if t.closed_at else None,
            "first_read_at": _from_ts(t.first_read) if t.first_read else None,
            "read_status": t.read_status,
            "alert_level": t.alert_level,
            "next_alert_at": _from_ts(t.next_alert) if t.next_alert else None,
            "escalation_seconds_left": None,
            "escalation_running": t.escalating,
            "counter_since": _from_ts(t.counter_since),
            "queue_seconds": c["queue"],
            "internal_seconds": c["internal"],
            "external_seconds": c["external"],
            "queue_work_seconds": c.get("queue_work", 0),
            "internal_work_seconds": c.get("internal_work", 0),
            "external_work_seconds": c.get("external_work", 0),
            "first_reply_seconds": t.first_reply,
            "first_reply_work_seconds": t.first_reply_work,
            "close_seconds": t.close_s,
            "close_work_seconds": t.close_work,
            "message_count": len(t.messages),
            "reply_count": t.reply_count,
            "needs_review": t.needs_review,
            "version": t.version,
        }

    def finish(self, s: Session) -> None:
        """Round-robin queues carry on after the last demo agent they picked."""
        for cat in self.world.categories.values():
            if cat.method == "round_robin" and cat.agents and cat.rr_next:
                row = s.get(M.Category, cat.id)
                if row is not None:
                    row.last_assigned_agent_id = cat.agents[(cat.rr_next - 1) % len(cat.agents)].id
                    s.add(row)
