"""Summarizes a schemathesis NDJSON event stream for scripts/fuzz.sh.

    python3 scripts/fuzz_report.py EVENTS.ndjson --spec openapi.json --min-requests 2000 \
        [--auth-stats auth.json]

Counts every request schemathesis sent (each recorded interaction, in every
phase), per operation with its status codes and how many reached 2xx, and
the results of every check. Requests with a method the spec does not
declare for a path (schemathesis's unsupported_method probes, each answered
405) are summed up on one line. Exits non-zero when fewer than --min-requests
requests were sent, when any answer was a 5xx, or when any check failed
(schemathesis itself fails the run on a failed check too; this is the
second look, from the recorded events).
"""

import argparse
import base64
import collections
import json
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("events")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--min-requests", type=int, required=True)
    parser.add_argument("--auth-stats")
    args = parser.parse_args()

    per_op = collections.defaultdict(collections.Counter)
    per_phase = collections.Counter()
    checks = collections.defaultdict(collections.Counter)
    server_errors = []
    seen = set()
    schemathesis_version = "?"
    with open(args.events, encoding="utf-8") as f:
        for line in f:
            event = json.loads(line)
            if "Initialize" in event:
                schemathesis_version = event["Initialize"].get("schemathesis_version", "?")
                continue
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            phase = finished.get("phase", "?")
            for case_checks in (recorder.get("checks") or {}).values():
                for check in case_checks:
                    checks[check["name"]][check["status"]] += 1
            for case_id, interaction in (recorder.get("interactions") or {}).items():
                request = interaction.get("request") or {}
                response = interaction.get("response")
                key = (case_id, interaction.get("timestamp"))
                if key in seen:
                    continue
                seen.add(key)
                label = operation_label(recorder, case_id, request)
                status = response["status_code"] if response else "no response"
                per_op[label][status] += 1
                per_phase[phase] += 1
                if isinstance(status, int) and status >= 500:
                    server_errors.append((label, status, body_text(response)))

    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    declared = {
        f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item
    }
    undeclared = collections.Counter()
    for label in [label for label in per_op if label not in declared]:
        undeclared.update(per_op.pop(label))

    total = sum(sum(c.values()) for c in per_op.values()) + sum(undeclared.values())
    print(
        f"schemathesis {schemathesis_version}: {total} requests, "
        f"{len(per_op)} of the spec's {len(declared)} operations"
    )
    print("per phase: " + ", ".join(f"{p} {n}" for p, n in sorted(per_phase.items())))
    print(f"{'operation':<44} {'requests':>8} {'2xx':>5}  statuses")
    for label in sorted(per_op):
        counts = per_op[label]
        ok = sum(n for s, n in counts.items() if isinstance(s, int) and 200 <= s < 300)
        statuses = " ".join(f"{s}:{n}" for s, n in sorted(counts.items(), key=lambda i: str(i[0])))
        print(f"{label:<44} {sum(counts.values()):>8} {ok:>5}  {statuses}")
    if undeclared:
        statuses = " ".join(f"{s}:{n}" for s, n in sorted(undeclared.items(), key=lambda i: str(i[0])))
        print(f"{'(methods the spec does not declare)':<44} {sum(undeclared.values()):>8} {0:>5}  {statuses}")
    print("checks (results over all test cases):")
    failed_checks = 0
    for name in sorted(checks):
        results = checks[name]
        failed_checks += results.get("failure", 0)
        print(f"  {name:<40} " + ", ".join(f"{s} {n}" for s, n in sorted(results.items())))
    if args.auth_stats:
        try:
            with open(args.auth_stats, encoding="utf-8") as f:
                stats = json.load(f)
            print(
                f"auth hook: {stats['checks']} tokens handed out, "
                f"{stats['sign_ins']} superuser sign-ins (a fuzzed call had ended the previous session)"
            )
        except (OSError, ValueError, KeyError) as err:
            print(f"auth hook: no statistics ({err})")

    ok = True
    if server_errors:
        ok = False
        print(f"FAIL: {len(server_errors)} answers were 5xx:", file=sys.stderr)
        for label, status, body in server_errors[:20]:
            print(f"  {label}: {status} {body[:200]}", file=sys.stderr)
    if failed_checks:
        ok = False
        print(f"FAIL: {failed_checks} check results were failures", file=sys.stderr)
    if total < args.min_requests:
        ok = False
        print(f"FAIL: only {total} requests, fewer than {args.min_requests}", file=sys.stderr)
    return 0 if ok else 1


def operation_label(recorder, case_id, request):
    case = ((recorder.get("cases") or {}).get(case_id) or {}).get("value") or {}
    method = case.get("method") or request.get("method", "?")
    path = case.get("path")
    if path:
        return f"{method.upper()} {path}"
    return recorder.get("label", "?")


def body_text(response):
    content = (response or {}).get("content") or {}
    raw = content.get("$base64")
    if raw is None:
        return str(content)
    try:
        return base64.b64decode(raw).decode("utf-8", "replace")
    except ValueError:
        return raw


if __name__ == "__main__":
    sys.exit(main())
