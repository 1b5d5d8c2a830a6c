"""Reply templates: `{name}` placeholders, `{{` and `}}` for literal braces, one file a language.

The syntax looks like str.format but is parsed here: str.format would let a template reach
attributes (`{x.__class__}`) and format specs, and would read an unknown name as a KeyError
far from the file that holds it. A placeholder is a name of letters, digits and underscores,
optionally dotted (`{ticket.number}` is simply the key "ticket.number"); nothing else goes
between braces. A missing variable is an error that names it, never a silent blank.

Template files live in `<dir>/<folder>/<name>.<lang>.txt` (or `<dir>/<name>.<lang>.txt` for
folder ""): the first line is `Subject: ...`, then one blank line, then the body.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path

__all__ = [
    "DEFAULT_ACKNOWLEDGEMENT",
    "DEFAULT_ACK_BODY",
    "DEFAULT_ACK_SUBJECT",
    "STANDARD_VARIABLES",
    "TemplateError",
    "TemplateKey",
    "check_template",
    "load_template_dir",
    "pick_language",
    "render",
    "template_variables",
]

STANDARD_VARIABLES: Mapping[str, str] = {
    "number": "the ticket number, digits only (12)",
    "title": "the ticket title (usually the customer's first subject)",
    "customer_name": "the customer's display name, or their address when they gave none",
    "customer_email": "the customer's e-mail address",
    "agent_name": "the full name of the agent who writes",
    "agent_login": "the login of the agent who writes",
    "category": "the ticket's category name",
    "priority": "the ticket's priority name",
    "deadline": "the next deadline, in the desk's time zone",
    "desk_name": "the name of the help desk",
    "status": "the ticket's status name",
}
"""The variables the desk fills in for every template, with what each holds."""

DEFAULT_ACK_SUBJECT = "[#{number}] {title}"
DEFAULT_ACK_BODY = (
    "Hello,\n"
    "\n"
    "thank you for contacting {desk_name}. We have received your message and opened\n"
    "ticket #{number}: {title}\n"
    "\n"
    "An agent will answer you as soon as possible. To add anything, simply reply to this\n"
    "message and keep [#{number}] in the subject, so that it reaches the same ticket.\n"
    "\n"
    "This message was sent automatically."
)
DEFAULT_ACKNOWLEDGEMENT: tuple[str, str] = (DEFAULT_ACK_SUBJECT, DEFAULT_ACK_BODY)
"""(subject, body) of the English acknowledgement used when a desk configures none."""

TemplateKey = tuple[str, str, str]
"""(folder, name, language)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_LANG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
_SUBJECT = "Subject:"


class TemplateError(ValueError):
    """A template that cannot be rendered or loaded; the message says where and why."""

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def _parse(text: str) -> list[tuple[str, str, int]]:
    """Pieces of ("text", literal, pos) and ("var", name, pos); TemplateError on bad braces."""
    pieces: list[tuple[str, str, int]] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            name = text[i + 1 : end] if end != -1 else ""
            if end == -1 or _NAME.fullmatch(name) is None:
                shown = text[i : end + 1] if end != -1 and end - i < 40 else "{"
                raise TemplateError(
                    f"bad placeholder {shown!r} at {_where(text, i)}: "
                    "use {name}, or {{ for a literal brace"
                )
            pieces.append(("text", "".join(literal), i))
            literal = []
            pieces.append(("var", name, i))
            i = end + 1
        elif ch == "}":
            if not text.startswith("}}", i):
                raise TemplateError(
                    f"single '}}' at {_where(text, i)}: write }}}} for a literal brace"
                )
            literal.append("}")
            i += 2
        else:
            literal.append(ch)
            i += 1
    pieces.append(("text", "".join(literal), n))
    return pieces


def render(template_text: str, variables: Mapping[str, str]) -> str:
    """The template with each `{name}` replaced; TemplateError names an unknown variable."""
    out: list[str] = []
    for kind, value, pos in _parse(template_text):
        if kind == "text":
            out.append(value)
        elif value in variables:
            out.append(str(variables[value]))
        else:
            raise TemplateError(
                f"unknown template variable {value!r} at {_where(template_text, pos)}",
                variable=value,
            )
    return "".join(out)


def template_variables(text: str) -> set[str]:
    """The variable names the template uses; TemplateError if its braces are malformed."""
    return {value for kind, value, _ in _parse(text) if kind == "var"}


def check_template(text: str, known: Collection[str]) -> list[str]:
    """Every problem in the template (bad braces, unknown variables), for config checks."""
    try:
        pieces = _parse(text)
    except TemplateError as exc:
        return [str(exc)]
    known_set = set(known)
    problems: list[str] = []
    reported: set[str] = set()
    for kind, value, pos in pieces:
        if kind == "var" and value not in known_set and value not in reported:
            reported.add(value)
            problems.append(f"unknown template variable {value!r} at {_where(text, pos)}")
    return problems


def _norm_lang(tag: str) -> str:
    return tag.strip().replace("_", "-").lower()


def pick_language(available: Collection[str], wanted: str | None, default: str = "en") -> str:
    """The best of `available` for `wanted`: exact, then same base language, then default.

    "de-CH" takes "de" and "de" takes "de-AT" when nothing closer exists; with neither the
    wanted nor the default language available, the alphabetically first one is used so that
    a customer always gets some answer. Returns the spelling found in `available`.
    """
    if not available:
        raise TemplateError("no template languages available")
    by_norm: dict[str, str] = {}
    for tag in sorted(available):
        by_norm.setdefault(_norm_lang(tag), tag)
    for want in (wanted, default):
        if not want:
            continue
        w = _norm_lang(want)
        if w in by_norm:
            return by_norm[w]
        base = w.split("-", 1)[0]
        if base in by_norm:
            return by_norm[base]
        for norm, tag in by_norm.items():
            if norm.split("-", 1)[0] == base:
                return tag
    return by_norm[min(by_norm)]


def _read_template(path: Path) -> tuple[str, str]:
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = lines[0]
    if not first.startswith(_SUBJECT):
        raise TemplateError(f"{path}: the first line must be 'Subject: ...'")
    if len(lines) > 1 and lines[1].strip():
        raise TemplateError(f"{path}: a blank line must follow the Subject line")
    subject = first[len(_SUBJECT) :].strip()
    body = "\n".join(lines[2:]).rstrip()
    for part, text in (("subject", subject), ("body", body)):
        try:
            _parse(text)
        except TemplateError as exc:
            raise TemplateError(f"{path}: {part}: {exc}") from exc
    return subject, body


def _key(path: Path, folder: str) -> TemplateKey:
    stem = path.name.removesuffix(".txt")
    name, dot, lang = stem.rpartition(".")
    lang = _norm_lang(lang)
    if not dot or not name or _LANG.fullmatch(lang) is None:
        raise TemplateError(
            f"{path}: template files are named <name>.<language>.txt (for example ack.en.txt)"
        )
    return folder, name, lang


def load_template_dir(path: Path | str) -> dict[TemplateKey, tuple[str, str]]:
    """Every template under path as {(folder, name, language): (subject, body)}.

    Only `.txt` files directly in path (folder "") or one folder down are read; hidden files
    and anything else (a README, editor backups) are ignored. Errors name the file.
    """
    root = Path(path)
    if not root.is_dir():
        raise TemplateError(f"{root}: no such template folder")
    found: dict[TemplateKey, tuple[str, str]] = {}
    candidates = [(p, "") for p in sorted(root.iterdir()) if p.is_file()]
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and not sub.name.startswith("."):
            candidates += [(p, sub.name) for p in sorted(sub.iterdir()) if p.is_file()]
    for file, folder in candidates:
        if file.name.startswith(".") or not file.name.endswith(".txt"):
            continue
        key = _key(file, folder)
        if key in found:
            raise TemplateError(f"{file}: a second template for {key[1]!r} in {key[2]!r}")
        found[key] = _read_template(file)
    return found
