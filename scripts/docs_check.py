#!/usr/bin/env python3
"""Checks the guide under docs/ against the code (standard library only).

Five checks, run by scripts/docs.sh:

  docs_check.py http --server BIN --smtp-url URL --mail-dir DIR [--oidc-issuer URL]
                     [--env K=V]... PAGE...
      Runs every HTTP example of each flow page against a fresh demo server
      (BIN, started once per page on a free port) and compares each answer
      with the one the page shows. `--base URL` instead of `--server` runs
      one page against a server you started yourself. `--oidc-issuer` is
      the OpenID provider (scripts/oidc.sh) the OAuth page signs in with:
      its pages see it as $OIDC_ISSUER, in their examples and in their
      <!-- server … --> settings.

  docs_check.py excerpts FILE...
      Every ```rust,ignore block must be preceded by
      <!-- excerpt: path/in/repo.rs --> and its lines must appear, in
      order, in that file (so an excerpt cannot drift from the compiled
      code it quotes).

  docs_check.py links FILE...
      Every relative link points at an existing file, every #anchor at a
      heading of the page it names.

  docs_check.py coverage
      Every event, action and email message of the code, and every error
      code it answers, is named in the guide (hooks page, templates page,
      error tables).

  docs_check.py snippets --out DIR FILE...
      Writes every ```rust block (without `ignore`) as an example of a
      scratch crate in DIR, which scripts/docs.sh then builds.

The page syntax is documented in docs/README.md ("How the examples are
checked"). Everything that does not match fails loudly: a status or a
response shape that differs, an example without its response, a response
without its example, an unknown variable, an unknown directive, a mail that
does not arrive within 10 s.
"""

import argparse
import email
import email.policy
import http
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request

ELLIPSIS = "\u2026"  # the placeholder: "…"
MAIL_WAIT_SECS = 10
NO_MAIL_WAIT_SECS = 2
CURL_TIMEOUT_SECS = 20
DIRECTIVES = ("save", "mail", "no-mail", "server", "wait", "totp")
MAX_WAIT_SECS = 30


class CheckError(Exception):
    """A mismatch or a malformed page: reported with its location."""


# --------------------------------------------------------------------------
# Markdown: fenced blocks and HTML comments, in order.


class Block:
    def __init__(self, kind, line, lang="", info="", text=""):
        self.kind = kind  # "code" or "comment"
        self.line = line  # 1-based line of the opening fence / comment
        self.lang = lang  # first word of the info string
        self.info = info  # the whole info string
        self.text = text


def parse_markdown(path):
    """The fenced code blocks and the HTML comments outside them."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    items = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(\s*)(`{3,}|~{3,})(.*)$", line)
        if fence:
            indent, marker, info = fence.groups()
            info = info.strip()
            body = []
            j = i + 1
            while j < len(lines):
                closing = re.match(r"^\s*(`{3,}|~{3,})\s*$", lines[j])
                if closing and closing.group(1)[0] == marker[0] and len(closing.group(1)) >= len(marker):
                    break
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            else:
                raise CheckError(f"{path}:{i + 1}: code block is never closed")
            lang = re.split(r"[\s,{]", info, maxsplit=1)[0] if info else ""
            items.append(Block("code", i + 1, lang, info, "\n".join(body)))
            i = j + 1
            continue
        start = line.find("<!--")
        if start >= 0:
            text = line[start + 4:]
            j = i
            while "-->" not in text:
                j += 1
                if j >= len(lines):
                    raise CheckError(f"{path}:{i + 1}: HTML comment is never closed")
                text += "\n" + lines[j]
            items.append(Block("comment", i + 1, text=text[: text.index("-->")].strip()))
            i = j + 1
            continue
        i += 1
    return items


def directive(block, path):
    """(keyword, args) when the comment is a directive, else None."""
    words = block.text.split(None, 1)
    if not words:
        return None
    keyword = words[0]
    rest = words[1] if len(words) > 1 else ""
    if keyword in DIRECTIVES:
        return keyword, rest
    # Something that looks like a directive but is not one: a typo.
    if re.fullmatch(r"[a-z][a-z-]*", keyword) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", rest):
        raise CheckError(
            f"{path}:{block.line}: unknown directive `{keyword}` (known: {', '.join(DIRECTIVES)})"
        )
    return None


# --------------------------------------------------------------------------
# Expected responses and the shape comparison.


def parse_expected(text, where):
    """(status, [(name, value)], body or None) from an ```http block."""
    lines = text.strip("\n").split("\n")
    m = re.fullmatch(r"HTTP/(?:1\.1|2) (\d{3}) (.+)", lines[0].strip())
    if not m:
        raise CheckError(f"{where}: an http block starts with a status line like `HTTP/1.1 200 OK`")
    status, reason = int(m.group(1)), m.group(2).strip()
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        raise CheckError(f"{where}: unknown status {status}") from None
    if reason != phrase:
        raise CheckError(f"{where}: status {status} is `{phrase}`, the page says `{reason}`")
    headers = []
    i = 1
    while i < len(lines) and lines[i].strip():
        name, sep, value = lines[i].partition(":")
        if not sep:
            raise CheckError(f"{where}: `{lines[i]}` is not a `Name: value` header line")
        headers.append((name.strip().lower(), value.strip()))
        i += 1
    body_text = "\n".join(lines[i:]).strip()
    if not body_text:
        return status, headers, None
    try:
        body = json.loads(body_text)
    except json.JSONDecodeError as err:
        raise CheckError(f"{where}: the response body on the page is not JSON: {err}") from None
    return status, headers, body


def text_matches(pattern, value):
    """`…` in the page's string matches any text (a glob); else equality."""
    if ELLIPSIS not in pattern:
        return pattern == value
    parts = pattern.split(ELLIPSIS)
    if not value.startswith(parts[0]):
        return False
    pos = len(parts[0])
    for part in parts[1:-1]:
        found = value.find(part, pos)
        if found < 0:
            return False
        pos = found + len(part)
    return value.endswith(parts[-1]) and len(value) - len(parts[-1]) >= pos


def kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def compare(expected, actual, path, problems):
    """Appends every difference between the page's JSON and the answer."""
    if kind(expected) != kind(actual):
        problems.append(f"{path}: expected {kind(expected)} {json.dumps(expected, ensure_ascii=False)}, "
                        f"got {kind(actual)} {json.dumps(actual, ensure_ascii=False)}")
        return
    if isinstance(expected, dict):
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing:
            problems.append(f"{path}: missing key(s) {', '.join(missing)}")
        if extra:
            problems.append(f"{path}: unexpected key(s) {', '.join(extra)}")
        for key in expected:
            if key in actual:
                compare(expected[key], actual[key], f"{path}.{key}", problems)
    elif isinstance(expected, list):
        if expected and expected[-1] == ELLIPSIS:
            # [a, b, "…"]: a, b, then any number of items shaped like b.
            fixed = expected[:-1]
            if len(actual) < len(fixed):
                problems.append(f"{path}: expected at least {len(fixed)} item(s), got {len(actual)}")
                return
            for i, item in enumerate(actual):
                if i < len(fixed):
                    compare(fixed[i], item, f"{path}[{i}]", problems)
                elif fixed:
                    compare(fixed[-1], item, f"{path}[{i}]", problems)
        else:
            if len(actual) != len(expected):
                problems.append(f"{path}: expected {len(expected)} item(s), got {len(actual)}")
                return
            for i, (e, a) in enumerate(zip(expected, actual)):
                compare(e, a, f"{path}[{i}]", problems)
    elif isinstance(expected, str):
        if not text_matches(expected, actual):
            problems.append(f"{path}: expected {json.dumps(expected, ensure_ascii=False)}, "
                            f"got {json.dumps(actual, ensure_ascii=False)}")
    elif expected != actual:
        problems.append(f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}")


# --------------------------------------------------------------------------
# Running an example.


def shell_variables(command):
    """Names of the $VARIABLES a command expands (not inside '…' quotes)."""
    names = []
    i, quoted = 0, False
    while i < len(command):
        c = command[i]
        if quoted:
            quoted = c != "'"
        elif c == "\\":
            i += 1
        elif c == "'":
            quoted = True
        elif c == "$":
            m = re.match(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", command[i:])
            if m:
                names.append(m.group(1) or m.group(2))
        i += 1
    return names


def run_curl(command, variables, cwd, where):
    """Runs the example with bash; returns (status, [(name, value)], body)."""
    first = command.strip().split(None, 1)[0] if command.strip() else ""
    if first != "curl":
        raise CheckError(f"{where}: a ```sh example is one curl command (it starts with `{first}`)")
    unknown = sorted({n for n in shell_variables(command) if n not in variables})
    if unknown:
        raise CheckError(
            f"{where}: unknown variable(s) {', '.join('$' + n for n in unknown)}; "
            f"defined so far: {', '.join('$' + n for n in sorted(variables))}"
        )
    script = (
        "set -euo pipefail\n"
        f'curl() {{ command curl -sS -i --max-time {CURL_TIMEOUT_SECS} "$@"; }}\n'
        + command
        + "\n"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": cwd, "LC_ALL": "C.UTF-8"}
    env.update(variables)
    proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise CheckError(
            f"{where}: the command failed (exit {proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    return parse_curl_output(proc.stdout, where)


def parse_curl_output(raw, where):
    text = raw.decode("utf-8", errors="replace")
    while True:
        head, sep, rest = text.partition("\r\n\r\n")
        if not sep:
            raise CheckError(f"{where}: no HTTP response in curl's output: {text[:200]!r}")
        lines = head.split("\r\n")
        m = re.match(r"HTTP/[\d.]+ (\d{3})", lines[0])
        if not m:
            raise CheckError(f"{where}: unexpected curl output: {lines[0]!r}")
        status = int(m.group(1))
        if 100 <= status < 200:
            text = rest
            continue
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        return status, headers, rest


def substitute(expected, variables, where):
    """The page's answer with `$NAME` (a saved variable, upper-case) in its
    strings and header values replaced by the variable's value."""
    def text(value):
        def one(m):
            name = m.group(1) or m.group(2)
            if name not in variables:
                raise CheckError(f"{where}: unknown variable ${name} in the answer; "
                                 f"defined so far: {', '.join('$' + n for n in sorted(variables))}")
            return variables[name]
        return re.sub(r"\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))", one, value)

    def walk(value):
        if isinstance(value, str):
            return text(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    status, headers, body = expected
    return status, [(n, text(v)) for n, v in headers], walk(body)


def check_response(expected, actual, where):
    exp_status, exp_headers, exp_body = expected
    status, headers, body = actual
    problems = []
    if status != exp_status:
        problems.append(f"status: expected {exp_status}, got {status}")
    for name, value in exp_headers:
        values = [v for n, v in headers if n == name]
        ok = any(text_matches(value, v) for v in values)
        if not ok:
            shown = "; ".join(values) if values else "none"
            problems.append(f"header {name}: expected `{value}`, got {shown}")
    parsed = None
    if exp_body is None:
        if body.strip():
            problems.append(f"body: expected none, got {body.strip()[:300]}")
    else:
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            problems.append(f"body: expected JSON, got {body.strip()[:300]!r}")
        else:
            compare(exp_body, parsed, "body", problems)
    if problems:
        shown = body.strip()
        if parsed is not None:
            shown = json.dumps(parsed, indent=2, ensure_ascii=False)
        raise CheckError(
            f"{where}: the answer differs from the page:\n  - "
            + "\n  - ".join(problems)
            + f"\n  actual answer: HTTP {status}\n"
            + "\n".join("    " + l for l in shown.split("\n"))
        )
    return parsed


# --------------------------------------------------------------------------
# Directives.


def saved_value(body, headers, source, where):
    """What `save NAME=source` saves: `.json.path` of the body,
    `header:Name` a header's value, `param:name` a query or fragment
    parameter of the URL in the `Location` header."""
    if source.startswith("header:"):
        name = source[len("header:"):].strip().lower()
        values = [v for n, v in headers if n == name]
        if not values:
            raise CheckError(f"{where}: the answer has no `{name}` header")
        return values[0]
    if source.startswith("param:"):
        name = source[len("param:"):].strip()
        locations = [v for n, v in headers if n == "location"]
        if not locations:
            raise CheckError(f"{where}: `{source}` needs a `Location` header, the answer has none")
        url = urllib.parse.urlsplit(locations[0])
        for part in (url.query, url.fragment):
            params = urllib.parse.parse_qs(part, keep_blank_values=True)
            if name in params:
                return params[name][0]
        raise CheckError(f"{where}: the Location {locations[0]} has no parameter `{name}`")
    if body is None:
        raise CheckError(f"{where}: `{source}`: the answer has no JSON body")
    return json_path(body, source, where)


def totp_code(secret_base32, unix_time):
    """The RFC 6238 code (HMAC-SHA1, 6 digits, 30 s) of a base32 secret."""
    import base64
    import hashlib
    import hmac
    import struct

    padded = secret_base32.upper() + "=" * (-len(secret_base32) % 8)
    key = base64.b32decode(padded)
    digest = hmac.new(key, struct.pack(">Q", int(unix_time // 30)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def json_path(value, path, where):
    if not path.startswith("."):
        raise CheckError(f"{where}: a saved value is a JSON path like `.access_token`, "
                         f"`header:Name` or `param:name` (got `{path}`)")
    current = value
    for m in re.finditer(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|(.)", path):
        key, index, junk = m.groups()
        if junk is not None:
            raise CheckError(f"{where}: malformed JSON path `{path}`")
        try:
            current = current[key] if key is not None else current[int(index)]
        except (KeyError, IndexError, TypeError):
            raise CheckError(f"{where}: the answer has no `{path}`") from None
    if isinstance(current, (dict, list)) or current is None:
        raise CheckError(f"{where}: `{path}` is not a string or number")
    return str(current).lower() if isinstance(current, bool) else str(current)


def assignments(args, where):
    """NAME=value words (shell-quoted) → (variables, lowercase options)."""
    try:
        words = shlex.split(args)
    except ValueError as err:
        raise CheckError(f"{where}: {err}") from None
    names, options = {}, {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise CheckError(f"{where}: `{word}` is not NAME=value")
        if re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            names[key] = value
        elif re.fullmatch(r"[a-z]+", key):
            options[key] = value
        else:
            raise CheckError(f"{where}: `{key}`: variables are UPPER_CASE, options lower-case")
    return names, options


class MailDir:
    """The SMTP sink's directory: <n>.eml (and <n>.json), n = 1, 2, …"""

    def __init__(self, path):
        self.path = path

    def numbers(self):
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(int(n[:-4]) for n in names if re.fullmatch(r"\d+\.eml", n))

    def mark(self):
        numbers = self.numbers()
        return numbers[-1] if numbers else 0

    def matching(self, after, to, subject):
        found = []
        for n in self.numbers():
            if n <= after:
                continue
            with open(os.path.join(self.path, f"{n}.eml"), "rb") as f:
                message = email.message_from_bytes(f.read(), policy=email.policy.default)
            if str(message.get("To", "")).strip().lower() != to.lower():
                continue
            if subject and subject not in str(message.get("Subject", "")):
                continue
            found.append((n, message))
        return found


def mail_text(message):
    """The text/plain body, transfer encoding (quoted-printable, base64) undone."""
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        raise CheckError("the mail has no text/plain part")
    return part.get_content()


def extract(text, what, where):
    if what in ("token", "link"):
        for url in re.findall(r"https?://[^\s<>\"]+", text):
            if what == "link":
                return url
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            if "token" in query:
                return query["token"][0]
        raise CheckError(f"{where}: no link{' with a token' if what == 'token' else ''} in the mail:\n{text}")
    if what == "code":
        for line in text.split("\n"):
            if re.fullmatch(r"[A-Za-z0-9_-]{6,}", line.strip()):
                return line.strip()
        raise CheckError(f"{where}: no code (a line of its own) in the mail:\n{text}")
    raise CheckError(f"{where}: a mail gives `token`, `link` or `code`, not `{what}`")


# --------------------------------------------------------------------------
# Servers.


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One demo server process on a free port, with its log."""

    def __init__(self, binary, env, log_path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
        full.update(env)
        full["PORTCULLIS_ADDR"] = f"127.0.0.1:{self.port}"
        full["PORTCULLIS_PUBLIC_URL"] = self.base
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([binary], env=full, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise CheckError(f"the demo server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/auth/providers", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.1)
        raise CheckError(f"the demo server did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines=30):
        self.log.flush()
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            tail = f.read().split("\n")[-lines:]
        return "\n".join("    " + re.sub(r"\x1b\[[0-9;]*m", "", l) for l in tail)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # graceful: finishes queued mail
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------
# A flow page.


def expand(value, known, where):
    """`$NAME` / `${NAME}` in a server setting, from the runner's variables."""
    def one(m):
        name = m.group(1) or m.group(2)
        if name not in known:
            raise CheckError(f"{where}: unknown variable ${name} in `server` "
                             f"(known: {', '.join('$' + n for n in sorted(known)) or 'none'})")
        return known[name]
    return re.sub(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", one, value)


def server_env(items, path, known):
    """The page's <!-- server … --> settings; `$NAME` in a value is one of
    the runner's variables (`known`, e.g. $OIDC_ISSUER)."""
    env = {}
    seen_example = False
    for block in items:
        if block.kind == "code" and block.lang == "sh":
            seen_example = True
        if block.kind != "comment":
            continue
        d = directive(block, path)
        if not d or d[0] != "server":
            continue
        where = f"{path}:{block.line}"
        if seen_example:
            raise CheckError(f"{where}: `server` comes before the first example")
        names, options = assignments(d[1], where)
        if options or not all(n.startswith("PORTCULLIS_") for n in names):
            raise CheckError(f"{where}: `server` sets PORTCULLIS_* variables only")
        env.update({k: expand(v, known, where) for k, v in names.items()})
    return env


def run_page(path, base, mail_dir, verbose, stats, known):
    """Runs every example of a page in order; counts them in stats["ok"].
    `known`: the runner's variables besides $BASE (e.g. $OIDC_ISSUER)."""
    items = parse_markdown(path)
    variables = dict(known)
    variables["BASE"] = base
    pending = None  # the ```sh block waiting for its ```http answer
    last = None  # (json body, mail mark before the command) of the last example
    count = 0
    with tempfile.TemporaryDirectory(prefix="docs-check-") as cwd:
        for block in items:
            where = f"{path}:{block.line}"
            if block.kind == "code":
                if block.lang == "sh":
                    if pending is not None:
                        raise CheckError(f"{path}:{pending.line}: this example has no ```http answer after it")
                    pending = block
                elif block.lang == "http":
                    if pending is None:
                        raise CheckError(f"{where}: an ```http answer without a ```sh example before it")
                    expected = substitute(parse_expected(block.text, where), variables, where)
                    mark = mail_dir.mark() if mail_dir else 0
                    actual = run_curl(pending.text, variables, cwd, f"{path}:{pending.line}")
                    body = check_response(expected, actual, f"{path}:{pending.line}")
                    count += 1
                    stats["ok"] = count
                    if verbose:
                        first = pending.text.strip().split("\n")[0].rstrip(" \\")
                        print(f"    ok {actual[0]}  {first}", flush=True)
                    last = (body, actual[1], mark)
                    pending = None
                elif pending is not None:
                    raise CheckError(
                        f"{path}:{pending.line}: this example has no ```http answer after it "
                        f"(the next block, line {block.line}, is ```{block.lang})"
                    )
                continue
            d = directive(block, path)
            if not d or d[0] == "server":
                continue
            keyword, args = d
            if last is None or pending is not None:
                raise CheckError(f"{where}: `{keyword}` follows an example's ```http answer")
            body, headers, mark = last
            if keyword == "wait":
                # What a client does on a 429: wait the Retry-After seconds.
                if not re.fullmatch(r"\d+(\.\d+)?", args.strip()) or float(args) > MAX_WAIT_SECS:
                    raise CheckError(f"{where}: wait SECONDS (at most {MAX_WAIT_SECS})")
                time.sleep(float(args))
                continue
            names, options = assignments(args, where)
            if keyword == "totp":
                # What an authenticator app shows: `totp CODE=SECRET` puts
                # the current RFC 6238 code of the base32 secret in
                # $SECRET into CODE; `step=next` first waits for the next
                # 30-second step (a step is accepted once).
                if len(names) != 1 or set(options) - {"step"} or options.get("step", "next") != "next":
                    raise CheckError(f"{where}: totp NAME=SECRET_VARIABLE [step=next]")
                (name, source), = names.items()
                if source not in variables:
                    raise CheckError(f"{where}: totp: ${source} is not set")
                if "step" in options:
                    time.sleep(30 - time.time() % 30 + 0.2)
                variables[name] = totp_code(variables[source], time.time())
                continue
            if keyword == "save":
                if options or not names:
                    raise CheckError(f"{where}: save NAME=.json.path|header:Name|param:name …")
                for name, source in names.items():
                    variables[name] = saved_value(body, headers, source, where)
            elif keyword in ("mail", "no-mail"):
                if mail_dir is None:
                    raise CheckError(f"{where}: `{keyword}` needs --mail-dir")
                unknown = set(options) - {"to", "subject"}
                if unknown or "to" not in options:
                    raise CheckError(f"{where}: {keyword} to=ADDRESS [subject=TEXT] {'NAME=token|link|code' if keyword == 'mail' else ''}")
                if keyword == "no-mail":
                    if names:
                        raise CheckError(f"{where}: no-mail saves nothing")
                    time.sleep(NO_MAIL_WAIT_SECS)
                    found = mail_dir.matching(mark, options["to"], options.get("subject"))
                    if found:
                        raise CheckError(f"{where}: expected no mail to {options['to']}, got: "
                                         + "; ".join(str(m.get('Subject')) for _, m in found))
                    continue
                deadline = time.time() + MAIL_WAIT_SECS
                while True:
                    found = mail_dir.matching(mark, options["to"], options.get("subject"))
                    if found or time.time() > deadline:
                        break
                    time.sleep(0.1)
                if not found:
                    raise CheckError(
                        f"{where}: no mail to {options['to']}"
                        + (f" with `{options['subject']}` in the subject" if "subject" in options else "")
                        + f" after the example, within {MAIL_WAIT_SECS} s"
                    )
                text = mail_text(found[-1][1])
                for name, what in names.items():
                    variables[name] = extract(text, what, where)
                if verbose:
                    print(f"    ok mail to {options['to']}: {found[-1][1].get('Subject')}", flush=True)
        if pending is not None:
            raise CheckError(f"{path}:{pending.line}: this example has no ```http answer after it")
    return count


def cmd_http(args):
    if bool(args.server) == bool(args.base):
        raise SystemExit("give --server BIN (a fresh server per page) or --base URL")
    if args.base and len(args.pages) != 1:
        raise SystemExit("--base runs one page (pages expect a fresh server each)")
    env = {}
    for pair in args.env:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--env {pair}: KEY=VALUE")
        env[key] = value
    if args.smtp_url:
        env["PORTCULLIS_SMTP_URL"] = args.smtp_url
    mail_dir = MailDir(args.mail_dir) if args.mail_dir else None
    known = {}
    if args.oidc_issuer:
        known["OIDC_ISSUER"] = args.oidc_issuer.rstrip("/")
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="docs-logs-")
    os.makedirs(log_dir, exist_ok=True)
    failures, total = [], 0
    for page in args.pages:
        name = os.path.splitext(os.path.basename(page))[0]
        started = time.time()
        server = None
        stats = {"ok": 0}
        try:
            items = parse_markdown(page)
            if args.server:
                page_env = dict(env)
                page_env.update(server_env(items, page, known))
                server = Server(args.server, page_env, os.path.join(log_dir, f"{name}.log"))
                server.wait_ready()
                base = server.base
            else:
                base = args.base.rstrip("/")
            print(f"== {page} ({base})", flush=True)
            count = run_page(page, base, mail_dir, args.verbose, stats, known)
            total += count
            print(f"ok   {page}: {count} examples in {time.time() - started:.1f} s", flush=True)
        except CheckError as err:
            failures.append(page)
            total += stats["ok"]
            print(f"FAIL {page} (after {stats['ok']} passing examples)\n{err}", flush=True)
            if server is not None:
                print(f"  server log ({server.log_path}), last lines:\n{server.log_tail()}", flush=True)
        finally:
            if server is not None:
                server.stop()
    print(f"{len(args.pages) - len(failures)}/{len(args.pages)} pages passed, {total} examples checked")
    if failures:
        print("failed: " + ", ".join(failures))
        return 1
    return 0


# --------------------------------------------------------------------------
# Rust: excerpts and compiled snippets.


def normalize_source_line(line):
    """A source line without indentation and doc-comment markers (`///`,
    `//!`, and rustdoc's hidden-line `# `)."""
    s = line.strip()
    for prefix in ("//!", "///"):
        if s.startswith(prefix):
            s = s[len(prefix):].strip()
            break
    if s.startswith("# ") or s == "#":
        s = s[1:].strip()
    return s


def cmd_excerpts(args):
    failures, count = 0, 0
    root = os.path.abspath(args.root)
    for page in args.files:
        items = parse_markdown(page)
        for i, block in enumerate(items):
            if block.kind != "code" or block.lang != "rust":
                continue
            flags = [f.strip() for f in block.info.split(",")[1:]]
            if "ignore" not in flags:
                continue
            where = f"{page}:{block.line}"
            previous = items[i - 1] if i else None
            m = previous and previous.kind == "comment" and re.fullmatch(r"excerpt:\s*(\S+)", previous.text)
            if not m:
                print(f"FAIL {where}: a ```rust,ignore block is an excerpt of a compiled file: "
                      f"put <!-- excerpt: path/to/file.rs --> right before it")
                failures += 1
                continue
            source = os.path.join(root, m.group(1))
            try:
                with open(source, encoding="utf-8") as f:
                    file_lines = [normalize_source_line(l) for l in f.read().split("\n")]
            except OSError as err:
                print(f"FAIL {where}: {err}")
                failures += 1
                continue
            at = 0
            for line in block.text.split("\n"):
                want = normalize_source_line(line)
                if not want or want in ("// …", "// ...", "…"):
                    continue
                while at < len(file_lines) and file_lines[at] != want:
                    at += 1
                if at == len(file_lines):
                    print(f"FAIL {where}: excerpt of {m.group(1)}: `{line.strip()}` is not in the file "
                          f"(in this order)")
                    failures += 1
                    break
                at += 1
            else:
                count += 1
    print(f"excerpts: {count} ok, {failures} failed")
    return 1 if failures else 0


SNIPPET_MANIFEST = """\
# Generated by scripts/docs_check.py from the ```rust blocks of docs/: do not edit.
[package]
name = "portcullis-docs-snippets"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
portcullis = {{ path = "{root}", features = ["smtp", "mongodb"] }}
portcullis-credentials = {{ path = "{root}/providers/credentials" }}
portcullis-magic-link = {{ path = "{root}/providers/magic-link" }}
portcullis-oauth = {{ path = "{root}/providers/oauth" }}
portcullis-testkit = {{ path = "{root}/testkit" }}
async-trait = "0.1"
poem = {{ version = "3.1", features = ["cookie"] }}
poem-openapi = {{ version = "5.1", features = ["swagger-ui", "cookie", "chrono"] }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
tokio = {{ version = "1", features = ["rt-multi-thread", "macros", "sync", "time", "net", "signal"] }}
tracing = "0.1"

# The workspace's dev profile, so the dependencies built for it are reused.
[profile.dev]
debug = "line-tables-only"
[profile.dev.package."*"]
opt-level = 3
[profile.dev.package.portcullis]
opt-level = 0
[profile.dev.package.portcullis-credentials]
opt-level = 0
[profile.dev.package.portcullis-testkit]
opt-level = 0
[profile.dev.package.portcullis-magic-link]
opt-level = 0
[profile.dev.package.portcullis-oauth]
opt-level = 0
"""


def cmd_snippets(args):
    root = os.path.abspath(args.root)
    out = os.path.abspath(args.out)
    examples = os.path.join(out, "examples")
    shutil.rmtree(examples, ignore_errors=True)
    os.makedirs(examples)
    os.makedirs(os.path.join(out, "src"), exist_ok=True)
    with open(os.path.join(out, "src", "lib.rs"), "w") as f:
        f.write("//! Compiled snippets of the guide.\n")
    with open(os.path.join(out, "Cargo.toml"), "w") as f:
        f.write(SNIPPET_MANIFEST.format(root=root))
    lock = os.path.join(root, "Cargo.lock")
    if os.path.exists(lock):
        shutil.copy(lock, os.path.join(out, "Cargo.lock"))
    count = 0
    for page in args.files:
        stem = re.sub(r"[^a-z0-9]+", "_", os.path.splitext(os.path.relpath(page, os.path.join(root, "docs")))[0].lower())
        for block in parse_markdown(page):
            if block.kind != "code" or block.lang != "rust":
                continue
            flags = [f.strip() for f in block.info.split(",")[1:]]
            if "ignore" in flags:
                continue
            code = block.text
            if not re.search(r"^\s*(async\s+)?fn main\s*\(", code, re.M) and "#[tokio::main]" not in code:
                code += "\n\n#[allow(dead_code)]\nfn main() {}\n"
            name = f"{stem}_l{block.line}"
            with open(os.path.join(examples, f"{name}.rs"), "w") as f:
                f.write(f"// {os.path.relpath(page, root)}, line {block.line}\n"
                        "#![allow(missing_docs, unused)]\n" + code + "\n")
            count += 1
    print(f"snippets: {count} ```rust blocks written to {examples}")
    return 0


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group(0) == "_" else "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"(?ms)^(`{3,}|~{3,}).*?^\1\s*$", "", text)  # not inside code blocks
    return {slug(m.group(1)) for m in re.finditer(r"(?m)^#{1,6}\s+(.+?)\s*#*\s*$", text)}


def cmd_links(args):
    """Every relative link of the guide points at a file that exists, and
    every #anchor at a heading of that file."""
    root = os.path.abspath(args.root)
    failures, count = 0, 0
    for page in args.files:
        with open(page, encoding="utf-8") as f:
            text = f.read()
        text = re.sub(r"(?ms)^(`{3,}|~{3,}).*?^\1\s*$", "", text)
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            path_part, _, frag = target.partition("#")
            path = os.path.normpath(os.path.join(os.path.dirname(page), path_part)) if path_part else page
            count += 1
            if not os.path.exists(path) or not os.path.abspath(path).startswith(root):
                print(f"FAIL {page}: link to {target}: {path} does not exist")
                failures += 1
            elif frag and (os.path.isdir(path) or not path.endswith(".md") or frag not in anchors_of(path)):
                print(f"FAIL {page}: link to {target}: no heading `#{frag}` in {path}")
                failures += 1
    print(f"links: {count - failures} of {count} relative links resolve")
    return 1 if failures else 0


COVERAGE = [
    # (what, source files (globs), regex with one group, the page that must name each)
    ("event", ["src/hooks/mod.rs"], r'Event::\w+ \{ \.\. \} => "(\w+)"', "docs/integrators/hooks.md"),
    ("action", ["src/hooks/mod.rs"], r'Action::\w+ \{ \.\. \} => "(\w+)"', "docs/integrators/hooks.md"),
    ("provider event", ["providers/*/src/**/*.rs"], r'_EVENT: &str = "(\w+)"', "docs/integrators/hooks.md"),
    ("message", ["src/email/templates.rs"], r'Message::\w+(?: \{ \.\. \})? => "(\w+)"',
     "docs/integrators/email-templates.md"),
    ("error code", ["src/error.rs", "src/api/error.rs"], r'"([A-Z]{2,}(?:_[A-Z0-9]+)+|[A-Z]{4,})"', "docs"),
    ("validation code", ["src/**/*.rs", "providers/*/src/**/*.rs"],
     r'Error::validation\(\s*[^;]*?,\s*"([A-Z][A-Z0-9_]+)"', "docs"),
    ("validation code", ["src/**/*.rs", "providers/*/src/**/*.rs"], r'\bcode: "([A-Z][A-Z0-9_]+)"', "docs"),
    ("conformance check", ["testkit/src/lib.rs"], r'(?m)^\s+([a-z][a-z0-9_]+),\s*$',
     "docs/integrators/custom-store.md"),
]


def cmd_coverage(args):
    """Every event, action, message and error code in the code is named
    (as `name`) in the guide, so a new one cannot go undocumented."""
    import glob

    root = os.path.abspath(args.root)
    failures = 0
    checked = 0
    page_text = {}

    def text_of(target):
        if target not in page_text:
            path = os.path.join(root, target)
            files = [path] if os.path.isfile(path) else glob.glob(os.path.join(path, "**", "*.md"), recursive=True)
            page_text[target] = "\n".join(open(f, encoding="utf-8").read() for f in files)
        return page_text[target]

    for what, patterns, regex, target in COVERAGE:
        names = set()
        for pattern in patterns:
            for path in glob.glob(os.path.join(root, pattern), recursive=True):
                with open(path, encoding="utf-8") as f:
                    source = f.read()
                source = source.split("#[cfg(test)]")[0]  # not the unit tests
                names.update(re.findall(regex, source, re.S))
        for name in sorted(names):
            checked += 1
            if f"`{name}`" not in text_of(target):
                print(f"FAIL {what} `{name}` ({', '.join(patterns)}) is not documented in {target}")
                failures += 1
    print(f"coverage: {checked - failures} of {checked} names documented")
    return 1 if failures else 0


THREATS_HEADING = "## Threats and defences"
TEST_COLUMNS = ("Test", "Which test proves it")
TEST_REF = re.compile(r"`(?:([A-Za-z0-9_./-]+\.rs)::)?([a-z_][a-z0-9_]*)`")
TEST_DIRS = ("tests", "testkit", "src", "providers", "demo")


def table_cells(line):
    """The cells of one Markdown table row (no escaped pipes in our tables)."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def cmd_threats(args):
    """Every "## Threats and defences" table of the flow pages has a test
    column (`Test`, or `Which test proves it`) naming, for each row, the
    tests that prove the defence: `path/to/file.rs::function`, or a bare
    `function` defined in some file under tests/, testkit/, src/ or
    providers/ (several separated by `<br>` or `, `), or `none`. Each named
    file must exist and contain `fn function(`. Rows with `none` are listed
    as warnings; a row with no reference, or one that does not resolve, is
    a failure."""
    root = os.path.abspath(args.root)
    failures, tables, rows, refs, untested = 0, 0, 0, 0, []
    sources = {}

    def source(path):
        if path not in sources:
            with open(path, encoding="utf-8") as f:
                sources[path] = f.read()
        return sources[path]

    def all_sources():
        for top in TEST_DIRS:
            for dirpath, _, names in os.walk(os.path.join(root, top)):
                for name in names:
                    if name.endswith(".rs"):
                        yield os.path.join(dirpath, name)

    def defines(path, name):
        return re.search(r"\bfn " + re.escape(name) + r"\(", source(path)) is not None

    def fail(where, message):
        nonlocal failures
        print(f"FAIL {where}: {message}")
        failures += 1

    for page in args.files:
        with open(page, encoding="utf-8") as f:
            lines = f.read().splitlines()
        starts = [i for i, line in enumerate(lines) if line.strip() == THREATS_HEADING]
        for start in starts:
            table = []
            for i in range(start + 1, len(lines)):
                line = lines[i]
                if line.startswith("#"):
                    break
                if line.lstrip().startswith("|"):
                    table.append((i + 1, line))
                elif table:
                    break
            where = f"{page}:{start + 1}"
            if len(table) < 3:
                fail(where, f"no table with a header and rows under `{THREATS_HEADING}`")
                continue
            tables += 1
            header = table_cells(table[0][1])
            column = next((header.index(c) for c in TEST_COLUMNS if c in header), None)
            if column is None:
                fail(where, f"the table has no `Test` column (columns: {header})")
                continue
            for number, line in table[2:]:
                rows += 1
                cells = table_cells(line)
                where = f"{page}:{number}"
                if len(cells) != len(header):
                    fail(where, f"{len(cells)} cells, the header has {len(header)}")
                    continue
                cell = cells[column]
                if cell.lower() == "none":
                    untested.append(f"{where}: {cells[0]}")
                    continue
                found = TEST_REF.findall(cell)
                if not found:
                    fail(where, f"no test named in `{cell}` (`path/to/file.rs::test_name`, or `none`)")
                    continue
                for rel, name in found:
                    refs += 1
                    if not rel:
                        if not any(defines(path, name) for path in all_sources()):
                            fail(where, f"no `fn {name}(` under {', '.join(TEST_DIRS)}")
                        continue
                    path = os.path.normpath(os.path.join(root, rel))
                    if not path.startswith(root + os.sep) or not os.path.isfile(path):
                        fail(where, f"{rel} does not exist")
                    elif not defines(path, name):
                        fail(where, f"{rel} has no `fn {name}(`")
        if not starts:
            print(f"note {page}: no `{THREATS_HEADING}` section")
    for row in untested:
        print(f"WARN {row}: no test proves this defence (`none`)")
    print(f"threats: {tables} tables, {rows} rows, {refs} test references checked, "
          f"{failures} failures, {len(untested)} rows without a test")
    return 1 if failures else 0


# Phrases that promise work as not done yet: once it is done they are stale,
# and a guide page must not carry them. Say what exists instead.
STALE_PROMISES = ("not in this build", "(coming)", "coming soon", "not yet implemented",
                  "not implemented yet", "planned for a later")
ROUTE_CLAIM = re.compile(r"\b((?:GET|POST|PATCH|PUT|DELETE|HEAD)(?:\s*(?:,|/|and)\s*(?:GET|POST|PATCH|PUT|DELETE|HEAD))*)"
                         r"\s*`?\s*(?:\|\s*)?`?(/[A-Za-z0-9_.{}/<>-]*)")
ENV_CLAIM = re.compile(r"\bPORTCULLIS_[A-Z0-9_]*[A-Z0-9_<]")
RUST_PATH_CLAIM = re.compile(r"`((?:portcullis(?:_[a-z]+)*::)?(?:[a-z_]+::)*([A-Z][A-Za-z0-9]*)::([a-z_][a-z0-9_]*|[A-Z][A-Za-z0-9]*))(?:\([^`]*\))?`")
MODULE_FN_CLAIM = re.compile(r"`((?:portcullis(?:_[a-z]+)*::)?(api|store|testkit)::([a-z_][a-z0-9_]*|[A-Z][A-Za-z0-9]*))(?:\([^`]*\))?`")
# Routes that are served but are not operations of the spec.
EXTRA_ROUTES = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/")}
# Variable names the guide uses as placeholders.
ENV_PLACEHOLDERS = {"PORTCULLIS_X"}


def claim_docs(root):
    """README.md and every page of the guide: the texts whose claims are checked."""
    import glob
    files = [os.path.join(root, "README.md")]
    files += sorted(glob.glob(os.path.join(root, "docs", "**", "*.md"), recursive=True))
    return [f for f in files if os.path.isfile(f)]


def workspace_packages(root):
    """(package name, directory) of every workspace member."""
    text = open(os.path.join(root, "Cargo.toml"), encoding="utf-8").read()
    block = re.search(r"members\s*=\s*\[(.*?)\]", text, re.S)
    members = re.findall(r'"([^"]+)"', block.group(1)) if block else ["."]
    packages = []
    for member in members:
        manifest = open(os.path.join(root, member, "Cargo.toml"), encoding="utf-8").read()
        package = manifest.split("[package]", 1)[1] if "[package]" in manifest else manifest
        name = re.search(r'(?m)^name\s*=\s*"([^"]+)"', package)
        if name:
            packages.append((name.group(1), member))
    return packages


def code_files(root, tops=("src", "providers", "testkit", "examples", "demo", "benches")):
    for top in tops:
        base = os.path.join(root, top)
        if os.path.isfile(base) and base.endswith(".rs"):
            yield base
        for dirpath, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if d not in ("target", "node_modules")]
            for name in names:
                if name.endswith(".rs"):
                    yield os.path.join(dirpath, name)


def cmd_claims(args):
    """What the README and the guide say exists must exist in the code, and
    what the code serves or reads must be in the README:

    - no page promises work as "not in this build yet" / "(coming)";
    - every route named (`POST /auth/x`, a `| GET | /auth/x |` row) is an
      operation of the committed spec (or /openapi.json, /docs), and every
      operation of the spec is a row of the README's HTTP table;
    - every `PORTCULLIS_*` variable named is read somewhere in the code or
      scripts, and every one the library or the demo reads is in the README;
    - the README's collection table lists exactly the MongoStore collections;
    - every `portcullis-*` crate named is a workspace package, the README's
      crate table lists every package but the demo, and its Layout block
      names every member directory and every example;
    - every `Type::member` and `api::name` path named in backticks is
      defined (a `fn`, type, variant or constant of that name) in the code;
    - every event or action named in the hooks page's tables is one the code
      emits or asks.
    """
    import glob
    root = os.path.abspath(args.root)
    failures = []

    def fail(where, message):
        failures.append(f"FAIL {where}: {message}")

    docs = {path: open(path, encoding="utf-8").read() for path in claim_docs(root)}
    readme_path = os.path.join(root, "README.md")
    readme = docs.get(readme_path, "")
    rel = lambda path: os.path.relpath(path, root)

    # Stale promises.
    for path, text in docs.items():
        for number, line in enumerate(text.splitlines(), 1):
            lower = line.lower()
            for phrase in STALE_PROMISES:
                if phrase in lower:
                    fail(f"{rel(path)}:{number}", f"promises work as not done ({phrase!r}): say what exists")

    # Routes.
    spec = json.load(open(os.path.join(root, "openapi", "openapi.json"), encoding="utf-8"))
    operations = set(EXTRA_ROUTES)
    for route, item in spec.get("paths", {}).items():
        for method in item:
            if method.upper() in ("GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"):
                operations.add((method.upper(), route))
                if method == "get":
                    operations.add(("HEAD", route))
    def normalise_route(route):
        route = route.split("?")[0].split("#")[0].rstrip(".,;:)")
        route = re.sub(r"<([a-z_]+)>", r"{\1}", route)
        return route.rstrip("/") or "/"
    route_claims = 0
    for path, text in docs.items():
        in_code = False
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            for methods, route in ROUTE_CLAIM.findall(line):
                route = normalise_route(route)
                if not route.startswith(("/auth", "/users", "/.well-known", "/openapi", "/docs")):
                    continue
                for method in re.findall(r"[A-Z]+", methods):
                    if method == "AND":
                        continue
                    route_claims += 1
                    if (method, route) not in operations:
                        known = sorted(m for m, r in operations if r == route)
                        hint = f" (the spec has {', '.join(known)})" if known else " (no such path in the spec)"
                        fail(f"{rel(path)}:{number}", f"`{method} {route}` is not served{hint}")
    table_rows = set()
    for line in readme.splitlines():
        cells = table_cells(line) if line.lstrip().startswith("|") else []
        if len(cells) >= 2 and re.fullmatch(r"[A-Z, ]+", cells[0] or "-") and cells[1].startswith("/"):
            for method in re.findall(r"[A-Z]+", cells[0]):
                table_rows.add((method, normalise_route(cells[1])))
    for method, route in sorted(operations - set(EXTRA_ROUTES)):
        if method == "HEAD":
            continue
        if (method, route) not in table_rows:
            fail("README.md", f"`{method} {route}` is served but not in the HTTP table")

    # Environment variables.
    code_text = {}
    for path in list(code_files(root)) + glob.glob(os.path.join(root, "scripts", "**", "*"), recursive=True) \
            + glob.glob(os.path.join(root, "tests", "**", "*.rs"), recursive=True) + [os.path.join(root, ".ci", "run")]:
        if os.path.isfile(path) and "node_modules" not in path:
            try:
                code_text[path] = open(path, encoding="utf-8").read()
            except UnicodeDecodeError:
                pass
    all_code = "\n".join(code_text.values())
    env_claims = 0
    # Names built at run time, e.g. format!("PORTCULLIS_OAUTH_{}_CLIENT_ID", id).
    env_prefixes = set(re.findall(r'"(PORTCULLIS_[A-Z0-9_]*_)\{', all_code))
    for path, text in docs.items():
        for number, line in enumerate(text.splitlines(), 1):
            for name in ENV_CLAIM.findall(line):
                env_claims += 1
                prefix = name.split("<")[0]
                if name in ENV_PLACEHOLDERS:
                    continue
                if name.endswith("<") or name.endswith("_"):
                    found = prefix in all_code
                elif any(name.startswith(p) for p in env_prefixes):
                    found = True
                else:
                    found = re.search(r"\b" + re.escape(name) + r"\b", all_code) is not None
                if not found:
                    fail(f"{rel(path)}:{number}", f"`{name.rstrip('<')}` is read nowhere in the code or scripts")
    read_by_app = set()
    for path in code_files(root, ("src", "providers", "examples", "demo")):
        source = code_text.get(path) or open(path, encoding="utf-8").read()
        source = source.split("#[cfg(test)]")[0]
        read_by_app.update(re.findall(r'"(PORTCULLIS_(?!TEST_)[A-Z0-9_]*[A-Z0-9])"', source))
    for name in sorted(read_by_app):
        if name not in readme:
            fail("README.md", f"`{name}` is read by the library or the demo but not documented")

    # MongoStore collections.
    mongo = os.path.join(root, "src", "store", "mongo.rs")
    if os.path.isfile(mongo):
        source = open(mongo, encoding="utf-8").read()
        prefix = re.search(r'collection_prefix:\s*"([^"]+)"\.into\(\)', source)
        prefix = prefix.group(1) if prefix else "portcullis_"
        collections = {prefix + n for n in re.findall(r'collection\(&name\("([a-z_]+)"\)\)', source)}
        documented = set()
        for line in readme.splitlines():
            m = re.match(r"\|\s*`(" + re.escape(prefix) + r"[a-z_]+)`\s*\|", line.strip())
            if m:
                documented.add(m.group(1))
        for name in sorted(collections - documented):
            fail("README.md", f"collection `{name}` (src/store/mongo.rs) is not in the collection table")
        for name in sorted(documented - collections):
            fail("README.md", f"collection `{name}` is in the table but MongoStore has no such collection")

    # Crates, members and examples.
    packages = workspace_packages(root)
    names = {name for name, _ in packages}
    for path, text in docs.items():
        for number, line in enumerate(text.splitlines(), 1):
            for crate in re.findall(r"(?<![\w/.=-])(portcullis-[a-z][a-z-]*[a-z])(?![\w-])", line):
                if crate not in names:
                    fail(f"{rel(path)}:{number}", f"crate `{crate}` is not a workspace package")
    crate_rows = {m.group(1) for m in re.finditer(r"(?m)^\|\s*`(portcullis[a-z-]*)`\s*\|", readme)}
    for name, member in packages:
        if name not in crate_rows and not name.endswith("-demo"):
            fail("README.md", f"crate `{name}` ({member}) is not in the crate table")
    layout = re.search(r"## Layout\s*```text\n(.*?)```", readme, re.S)
    layout = layout.group(1) if layout else ""
    if not layout:
        fail("README.md", "no `## Layout` block")
    for name, member in packages:
        if member != "." and member.rstrip("/") + "/" not in layout and member.rstrip("/") not in layout.split():
            fail("README.md", f"Layout does not name the member `{member}` ({name})")
    for example in sorted(glob.glob(os.path.join(root, "examples", "*.rs"))):
        stem = os.path.splitext(os.path.basename(example))[0]
        if not re.search(r"\b" + re.escape(stem) + r"\b", layout):
            fail("README.md", f"Layout does not name the example `{stem}` (examples/{stem}.rs)")

    # Rust paths.
    definitions = set()
    for path in code_files(root, ("src", "providers", "testkit", "examples", "demo")):
        source = code_text.get(path) or open(path, encoding="utf-8").read()
        definitions.update(re.findall(r"\b(?:fn|struct|enum|trait|type|const|static|mod|macro_rules!)\s+([A-Za-z_][A-Za-z0-9_]*)", source))
        definitions.update(re.findall(r"(?m)^\s+([A-Z][A-Za-z0-9]*)\s*(?:[,({]|$)", source))  # enum variants
        definitions.update(re.findall(r"(?m)^\s+(?:pub\s+)?([a-z_][a-z0-9_]*)\s*:", source))  # fields
    path_claims = 0
    for path, text in docs.items():
        for number, line in enumerate(text.splitlines(), 1):
            for full, _type, member in RUST_PATH_CLAIM.findall(line):
                path_claims += 1
                if member not in definitions:
                    fail(f"{rel(path)}:{number}", f"`{full}`: no `{member}` is defined in the code")
            for full, _module, member in MODULE_FN_CLAIM.findall(line):
                path_claims += 1
                if member not in definitions:
                    fail(f"{rel(path)}:{number}", f"`{full}`: no `{member}` is defined in the code")

    # Events and actions of the hooks page.
    hooks_page = os.path.join(root, "docs", "integrators", "hooks.md")
    if os.path.isfile(hooks_page):
        emitted = set()
        for what, patterns, regex, target in COVERAGE:
            if what in ("event", "action", "provider event"):
                for pattern in patterns:
                    for path in glob.glob(os.path.join(root, pattern), recursive=True):
                        emitted.update(re.findall(regex, open(path, encoding="utf-8").read(), re.S))
        section = None
        for number, line in enumerate(docs[hooks_page].splitlines(), 1):
            if line.startswith("## "):
                section = line[3:].strip().lower()
            if section in ("actions", "events") and line.lstrip().startswith("|"):
                first = table_cells(line)[0]
                m = re.fullmatch(r"`([a-z][a-z0-9_]*)`", first)
                if m and m.group(1) not in ("action", "event") and m.group(1) not in emitted:
                    fail(f"docs/integrators/hooks.md:{number}", f"`{m.group(1)}` is not an {section[:-1]} of the code")

    for line in failures:
        print(line)
    print(f"claims: {route_claims} routes, {env_claims} variables, {path_claims} Rust paths checked; "
          f"{len(failures)} failures")
def toml_dependencies(text, where):
    """`[dependencies]` of a TOML text: {name: (version, sorted features,
    default-features)}; the source (git, path) is not compared."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CheckError(f"{where}: not valid TOML: {err}")
    deps = data.get("dependencies")
    if not isinstance(deps, dict) or not deps:
        raise CheckError(f"{where}: no [dependencies] table")
    out = {}
    for name, spec in deps.items():
        if isinstance(spec, str):
            spec = {"version": spec}
        out[name] = (spec.get("version"), tuple(sorted(spec.get("features", []))),
                     spec.get("default-features", True))
    return out


def cmd_same_dependencies(args):
    """Every ```toml block right after `<!-- same-dependencies: FILE -->`
    names the same [dependencies] (crates, versions, features) as FILE."""
    root = os.path.abspath(args.root)
    failures, count = 0, 0
    for page in args.files:
        items = parse_markdown(page)
        for i, block in enumerate(items):
            m = block.kind == "comment" and re.fullmatch(r"same-dependencies:\s*(\S+)", block.text)
            if not m:
                continue
            where = f"{page}:{block.line}"
            following = items[i + 1] if i + 1 < len(items) else None
            if not following or following.kind != "code" or following.lang != "toml":
                print(f"FAIL {where}: <!-- same-dependencies: … --> must stand right before a ```toml block")
                failures += 1
                continue
            path = os.path.join(root, m.group(1))
            try:
                with open(path, encoding="utf-8") as f:
                    other = toml_dependencies(f.read(), m.group(1))
                mine = toml_dependencies(following.text, f"{page}:{following.line}")
            except OSError as err:
                print(f"FAIL {where}: {err}")
                failures += 1
                continue
            except CheckError as err:
                print(f"FAIL {err}")
                failures += 1
                continue
            problems = []
            for name in sorted(set(mine) | set(other)):
                if name not in other:
                    problems.append(f"`{name}` is on the page but not in {m.group(1)}")
                elif name not in mine:
                    problems.append(f"`{name}` is in {m.group(1)} but not on the page")
                elif mine[name] != other[name]:
                    problems.append(f"`{name}`: page {mine[name]} != {m.group(1)} {other[name]} "
                                    f"(version, features, default-features)")
            for problem in problems:
                print(f"FAIL {where}: {problem}")
            failures += len(problems)
            count += 1
    if not count and not failures:
        print("FAIL no <!-- same-dependencies: … --> block found")
        return 1
    print(f"same-dependencies: {count} blocks checked, {failures} differences")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    h = sub.add_parser("http", help="run the HTTP examples of flow pages")
    h.add_argument("--server", help="demo server binary: a fresh one per page")
    h.add_argument("--base", help="or the base URL of a running server (one page)")
    h.add_argument("--smtp-url", help="PORTCULLIS_SMTP_URL for the servers")
    h.add_argument("--mail-dir", help="where the SMTP sink stores <n>.eml")
    h.add_argument("--oidc-issuer", help="the OpenID provider (scripts/oidc.sh): $OIDC_ISSUER of the pages")
    h.add_argument("--env", action="append", default=[], help="KEY=VALUE for every server")
    h.add_argument("--log-dir", help="server logs, one per page")
    h.add_argument("-v", "--verbose", action="store_true")
    h.add_argument("pages", nargs="+")
    e = sub.add_parser("excerpts", help="check ```rust,ignore excerpts against their files")
    e.add_argument("--root", default=".")
    e.add_argument("files", nargs="+")
    l = sub.add_parser("links", help="check the guide's relative links and anchors")
    l.add_argument("--root", default=".")
    l.add_argument("files", nargs="+")
    c = sub.add_parser("coverage", help="check every event, action, message and error code is documented")
    c.add_argument("--root", default=".")
    t = sub.add_parser("threats", help="check the threat tables name tests that exist")
    t.add_argument("--root", default=".")
    t.add_argument("files", nargs="+")
    k = sub.add_parser("claims", help="check that what the README and guide name exists in the code")
    k.add_argument("--root", default=".")
    d = sub.add_parser("same-dependencies",
                       help="check marked ```toml blocks list the [dependencies] of the file they name")
    d.add_argument("--root", default=".")
    d.add_argument("files", nargs="+")
    s = sub.add_parser("snippets", help="write ```rust blocks as examples of a scratch crate")
    s.add_argument("--root", default=".")
    s.add_argument("--out", required=True)
    s.add_argument("files", nargs="+")
    args = parser.parse_args()
    try:
        if args.command == "http":
            return cmd_http(args)
        if args.command == "excerpts":
            return cmd_excerpts(args)
        if args.command == "coverage":
            return cmd_coverage(args)
        if args.command == "links":
            return cmd_links(args)
        if args.command == "threats":
            return cmd_threats(args)
        if args.command == "claims":
            return cmd_claims(args)
        if args.command == "same-dependencies":
            return cmd_same_dependencies(args)
        return cmd_snippets(args)
    except CheckError as err:
        print(f"FAIL {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
