"""Refresh scanner/data/ct_log_list.json from Chrome's published CT log list.

    python tools/refresh_ct_log_list.py [--source URL-or-FILE] [--output PATH]

Downloads https://www.gstatic.com/ct/log_list/v3/log_list.json (or reads a
file saved from it), keeps what pinaudit reads (operator, description, log
id, state and since when, temporal interval, RFC 6962 or tiled) and writes
the trimmed snapshot with the list's version and timestamp. Review the diff
before committing: a log that left the list changes verdicts.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

SOURCE = "https://www.gstatic.com/ct/log_list/v3/log_list.json"
OUTPUT = Path(__file__).resolve().parent.parent / "scanner" / "data" / "ct_log_list.json"


def trim(doc: dict) -> dict:  # type: ignore[type-arg]
    operators = []
    for operator in doc["operators"]:
        logs = []
        for kind, key in (("rfc6962", "logs"), ("tiled", "tiled_logs")):
            for entry in operator.get(key, ()):
                if not entry.get("state"):
                    continue  # a log without a state is not in any program
                (state, detail), *_ = entry["state"].items()
                interval = entry.get("temporal_interval", {})
                logs.append(
                    {
                        "description": entry["description"],
                        "log_id": entry["log_id"],
                        "state": state,
                        "state_since": detail["timestamp"],
                        "start_inclusive": interval.get("start_inclusive"),
                        "end_exclusive": interval.get("end_exclusive"),
                        "kind": kind,
                    }
                )
        operators.append({"name": operator["name"], "logs": logs})
    return {
        "source": f"Chrome's CT log list, {SOURCE} (schema v3), trimmed to what pinaudit "
        "reads: no keys, no URLs",
        "version": doc["version"],
        "log_list_timestamp": doc["log_list_timestamp"],
        "refresh": "python tools/refresh_ct_log_list.py (downloads the list above; review the "
        "diff)",
        "operators": operators,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=SOURCE)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    if "://" in args.source:
        with urllib.request.urlopen(args.source, timeout=30) as response:
            doc = json.load(response)
    else:
        doc = json.loads(Path(args.source).read_text())
    trimmed = trim(doc)
    args.output.write_text(json.dumps(trimmed, indent=1, ensure_ascii=False) + "\n")
    count = sum(len(o["logs"]) for o in trimmed["operators"])
    print(f"{args.output}: version {trimmed['version']}, {count} logs", file=sys.stderr)


if __name__ == "__main__":
    main()
