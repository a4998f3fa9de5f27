#!/usr/bin/env python3
"""Writes the fuzz seed corpora into fuzz/corpus/<target>/ from ../shared/testdata.

The corpora are generated, not committed (fuzz/corpus is git-ignored): run this before
`cargo fuzz run` (docs/fuzzing.md). Usage: python3 fuzz/seed_corpus.py [TESTDATA_DIR]
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TESTDATA = os.path.join(HERE, "..", "..", "shared", "testdata")
# Enough real events to cover every kind and tag shape in the file, few enough that each
# fuzzing run starts in seconds.
MAX_REAL_EVENTS = 600


def lines(path, limit=None):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(line)
            if limit is not None and len(out) >= limit:
                break
    return out


def write(target, seeds):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    for seed in seeds:
        data = seed.encode("utf-8") if isinstance(seed, str) else seed
        name = hashlib.sha1(data).hexdigest()
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds in {folder}")


def main():
    testdata = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_TESTDATA)
    if not os.path.isdir(testdata):
        sys.exit(f"test data not found at {testdata} (pass the testdata directory)")
    events = lines(os.path.join(testdata, "events-real.jsonl"), MAX_REAL_EVENTS)
    for extra in ["events-invalid.jsonl", "events-synthetic-escapes.jsonl",
                  "events-valid-reencoded.jsonl"]:
        events += lines(os.path.join(testdata, extra))
    parsed = [json.loads(e) for e in events]
    some = parsed[:40]

    # Relay -> client frames.
    frames = [f'["EVENT","sub",{e}]' for e in events]
    for ev in some:
        frames.append(json.dumps(["OK", ev["id"], True, ""]))
        frames.append(json.dumps(["OK", ev["id"], False, "blocked: no"]))
        frames.append(json.dumps(["OK", ev["id"], True]))
    frames += [
        '["EOSE","sub"]', '["CLOSED","sub","auth-required: please"]',
        '["NOTICE","hello \\u00e9\\n"]', '["AUTH","challenge-123"]',
        '["COUNT","q",{"count":42}]', '["COUNT","q",{"count":1,"approximate":true}]',
        '["EOSE","sub","extra",1]', '["NOPE"]', "[]", "{}", "null",
    ]
    write("relay_frame", frames)

    # Client -> relay messages.
    messages = [f'["EVENT",{e}]' for e in events[:200]]
    messages += [f'["AUTH",{e}]' for e in events[:20]]
    for ev in some:
        f = {"ids": [ev["id"]], "authors": [ev["pubkey"]], "kinds": [ev["kind"]],
             "since": ev["created_at"] - 10, "until": ev["created_at"] + 10, "limit": 5}
        for tag in ev.get("tags", [])[:2]:
            if len(tag) >= 2 and len(tag[0]) == 1:
                f["#" + tag[0]] = [tag[1]]
        messages.append(json.dumps(["REQ", "s" + ev["id"][:8], f, {"kinds": [1]}]))
        messages.append(json.dumps(["COUNT", "c", f]))
    messages += ['["CLOSE","sub"]', '["REQ","sub",{}]', '["REQ","sub"]', '["COUNT","q",{}]']
    write("client_message", messages)
    # The hand-written EVENT readers against serde_json: relay frames and publishes.
    write("event_scan", frames + messages)

    write("event_verify", events)

    vectors = json.load(open(os.path.join(testdata, "nip19-vectors.json"), encoding="utf-8"))
    nip19 = [v["bech32"] for v in vectors["valid"] + vectors["invalid"]]
    nip19 += [s.upper() for s in nip19[:5]]
    write("nip19_decode", nip19)


if __name__ == "__main__":
    main()
