"""The dead-letter lifecycle through the real binary (issue 15, item 4): delete and
purge (dry run, confirmation on a terminal, --yes), the replay state in list and
show, replay --force of a job sent since, --status and --grep, "100 of 2,023" and
paging, and the dead count with the oldest letter's age in stats."""
import json
import os
import pty
import select
import subprocess
import time

from harness import OUTQ, Env, job, wait_until


def _letter(i, status, error, text="hi"):
    body = {"v": 1, "id": "syn-%04d" % i, "provider": "webhook", "account": "a" if i % 2 else "b",
            "message": {"text": text}}
    fields = {"id": body["id"], "job": json.dumps(body), "provider": "webhook", "account": body["account"],
              "error_class": "permanent", "error": error, "attempts": "1", "history": "[]",
              "failed_at": str(1764583200000 + i)}
    if status:
        fields["http_status"] = str(status)
    return fields


def _add_letters(env, n, start=0):
    """n synthetic dead letters, as a worker writes them: statuses 400, 422, 503 in turn,
    every fifth one's job mentions a phone number."""
    pipe = env.r.pipeline(transaction=False)
    for i in range(start, start + n):
        status = (400, 422, 503)[i % 3]
        text = "call +41 44 000 00 %02d" % (i % 100) if i % 5 == 0 else "hi"
        pipe.xadd(env.key("dead"), _letter(i, status, "HTTP %d: refused by the partner" % status, text))
    return pipe.execute()


def _on_a_terminal(env, args, answer):
    """Runs `outq <args>` with stdin (and stderr) on a pseudo-terminal, answers the question
    it asks with `answer` (None: asks none); returns (exit status, what it wrote on the
    terminal, stdout)."""
    leader, follower = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "OUTQ_REDIS_URL"}
    proc = subprocess.Popen([OUTQ] + list(args) + ["--redis", env.redis.url, "--queue", env.queue],
                            stdin=follower, stderr=follower, stdout=subprocess.PIPE, env=environment)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 30
    try:
        while answer is not None and b"[y/N]" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break
        if answer is not None:
            os.write(leader, answer.encode() + b"\n")
        out_parts = []
        while proc.poll() is None and time.monotonic() < deadline:  # keep the terminal drained
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break
        out, _ = proc.communicate(timeout=30)
        out = b"".join(out_parts) + out
        while True:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if not ready:
                break
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return proc.returncode, seen.decode(errors="replace"), out.decode()


def test_dead_delete_and_purge_dry_run_ask_on_a_terminal_and_refuse_without_one():
    with Env() as env:
        _add_letters(env, 6)  # 400, 422, 503, 400, 422, 503
        entries = [eid for eid, _ in env.r.xrange(env.key("dead"))]
        env.r.hset(env.key("replayed"), entries[0], "1764583300000-0")

        out = env.cli("dead", "purge", check=False, input="")
        assert out.returncode == 2 and "needs a filter" in out.stderr, out.stderr
        out = env.cli("dead", "purge", "--status", "abc", check=False, input="")
        assert out.returncode == 2 and "--status: expected an HTTP status" in out.stderr, out.stderr

        dry = env.cli("dead", "purge", "--status", "4xx", "--dry-run", input="")
        assert "4 dead letter(s) would be deleted (dry run)" in dry.stdout, dry.stdout
        assert "would delete syn-0000" in dry.stdout and "syn-0002" not in dry.stdout, dry.stdout
        assert env.r.xlen(env.key("dead")) == 6
        as_json = json.loads(env.cli("dead", "purge", "--status", "4xx", "--dry-run", "--json", input="").stdout)
        assert as_json["dry_run"] is True and as_json["deleted"] == 0, as_json
        assert [x["id"] for x in as_json["would_delete"]] == ["syn-0000", "syn-0001", "syn-0003", "syn-0004"]

        # No terminal, no --yes: more than one letter is refused, nothing deleted.
        out = env.cli("dead", "purge", "--status", "4xx", check=False, input="")
        assert out.returncode == 2 and "delete 4 dead letters?" in out.stderr and "--yes" in out.stderr, out.stderr
        assert env.r.xlen(env.key("dead")) == 6
        out = env.cli("dead", "delete", "syn-0000", "syn-0001", check=False, input="")
        assert out.returncode == 2 and "--yes" in out.stderr, out.stderr
        assert env.r.xlen(env.key("dead")) == 6

        # On a terminal it asks; anything but y keeps them.
        code, terminal, _ = _on_a_terminal(env, ["dead", "purge", "--status", "422"], "n")
        assert code == 1 and "delete 2 dead letters? [y/N]" in terminal, (code, terminal)
        assert env.r.xlen(env.key("dead")) == 6
        code, terminal, stdout = _on_a_terminal(env, ["dead", "purge", "--status", "422"], "y")
        assert code == 0 and "delete 2 dead letters? [y/N]" in terminal, (code, terminal)
        assert "deleted 2 dead letter(s)" in stdout, stdout
        assert env.r.xlen(env.key("dead")) == 4

        # One letter needs no confirmation; its replay link goes with it.
        out = env.cli("dead", "delete", "syn-0000", input="")
        assert "deleted 1 dead letter(s)" in out.stdout, out.stdout
        assert not env.r.hexists(env.key("replayed"), entries[0])
        out = env.cli("dead", "delete", "nope", check=False, input="")
        assert out.returncode == 1 and "no dead letter with job id or entry id nope" in out.stderr, out.stderr
        # --yes: no question.
        deleted = json.loads(env.cli("dead", "delete", entries[2], "syn-0003", "--yes", "--json", input="").stdout)
        assert deleted["deleted"] == 2 and deleted["dry_run"] is False, deleted
        assert [eid for eid, _ in env.r.xrange(env.key("dead"))] == [entries[5]]


def test_dead_list_counts_pages_and_filters_by_status_and_text():
    with Env() as env:
        _add_letters(env, 2023)
        out = env.cli("dead", "list")
        lines = out.stdout.splitlines()
        newest = env.r.xrevrange(env.key("dead"), count=101)
        assert lines[1].startswith(newest[0][0]), lines[:3]
        assert len(lines) == 1 + 100 + 1, len(lines)
        assert lines[-1] == "100 of 2,023 dead letters; next page: --after %s" % newest[99][0], lines[-1]
        page2 = env.cli("dead", "list", "--after", newest[99][0]).stdout.splitlines()
        assert page2[1].split()[0] == newest[100][0], page2[:2]
        assert page2[-1].startswith("100 of 2,023 dead letters (101–200, newest first); next page: --after "), \
            page2[-1]
        listed = json.loads(env.cli("dead", "list", "--status", "422", "--limit", "5000", "--json").stdout)
        assert len(listed) == 674 and {x["http_status"] for x in listed} == {422}, len(listed)
        out = env.cli("dead", "list", "--status", "4xx", "--json")
        assert "100 of 1,349 dead letters" in out.stderr, out.stderr
        json.loads(out.stdout)
        grep = json.loads(env.cli("dead", "list", "--grep", "+41 44", "--limit", "5000", "--json").stdout)
        assert len(grep) == 405 and all("+41 44" in x["job"] for x in grep), len(grep)
        both = json.loads(env.cli("dead", "list", "--grep", "HTTP 503", "--status", "5xx", "--limit", "5000",
                                  "--json").stdout)
        assert len(both) == 674, len(both)
        assert json.loads(env.cli("dead", "list", "--grep", "HTTP 503", "--status", "4xx", "--json").stdout) == []
        out = env.cli("dead", "list", "--status", "4x", check=False)
        assert out.returncode == 2 and "--status" in out.stderr, out.stderr

        # Progress of a replay and of a purge of thousands: a count line per 1,000 on stderr (not a
        # terminal), a bar on one.
        out = env.cli("dead", "replay", "--status", "4xx", input="")
        assert "outq: replayed 1,000 of 1,349" in out.stderr and "2,000" not in out.stderr, out.stderr
        assert env.r.xlen(env.key("jobs")) == 1349
        code, terminal, stdout = _on_a_terminal(env, ["dead", "purge", "--status", "4xx", "--yes"], None)
        assert code == 0 and "\rdeleted [" in terminal, (code, terminal[-300:])
        assert "\rdeleted [##############################] 1,349/1,349" in terminal, terminal[-300:]
        assert "outq: deleted 1,000" not in terminal and "deleted 1,349 dead letter(s)" in stdout, stdout
        _add_letters(env, 1500, start=10000)
        out = env.cli("dead", "purge", "--all", "--yes", input="")
        assert "outq: deleted 1,000 of 2,174" in out.stderr and "outq: deleted 2,000 of 2,174" in out.stderr, \
            out.stderr
        assert "deleted 2,174 dead letter(s)" in out.stdout, out.stdout
        assert env.r.xlen(env.key("dead")) == 0


def test_dead_list_and_show_say_when_a_letter_was_replayed_and_how_it_ended_and_force_asks_about_a_sent_job():
    with Env() as env:
        env.worker()
        env.enqueue([job("r-1", sandbox={"status": 400, "times": 1}), job("r-2", sandbox={"status": 400})])
        results = env.wait_results(["r-1", "r-2"])
        assert results["r-1"]["status"] == "dead" and results["r-2"]["status"] == "dead", results
        [row] = [x for x in env.cli_json("dead", "list") if x["id"] == "r-1"]
        assert row["replayed"] is None, row
        [line] = [x for x in env.cli("dead", "show", "r-1").stdout.splitlines() if x.startswith("replayed ")]
        assert line.split() == ["replayed", "no"], line

        env.cli("dead", "replay", "r-1")
        wait_until(lambda: (env.result_value("r-1") or {}).get("status") == "sent", 30, "r-1 sent on replay")
        [letter] = [x for x in env.dead_letters() if x["id"] == "r-1"]
        link = env.r.hget(env.key("replayed"), letter["entry_id"])
        shown = env.cli_json("dead", "show", "r-1")
        assert shown["replayed"] == {"entry": link, "at": int(link.split("-")[0]), "result": "sent"}, shown
        text = env.cli("dead", "show", "r-1").stdout
        assert "as entry %s at " % link in text and "result now: sent" in text, text
        listing = env.cli("dead", "list").stdout
        [line] = [x for x in listing.splitlines() if " r-1 " in x]
        assert " sent " in line and " ago " in line, line
        assert [x for x in env.cli_json("dead", "list") if x["id"] == "r-2"][0]["replayed"] is None

        # --force of a letter whose job was sent since: a warning, and without a terminal --yes is needed.
        replays = env.r.hlen(env.key("replayed"))
        stream_before = env.r.xinfo_stream(env.key("jobs"))["last-generated-id"]
        out = env.cli("dead", "replay", "r-1", "--force", check=False, input="")
        assert out.returncode == 2, (out.returncode, out.stderr)
        assert "warning: job r-1 has been sent since (its result says sent)" in out.stderr, out.stderr
        assert "--yes" in out.stderr, out.stderr
        assert env.r.xinfo_stream(env.key("jobs"))["last-generated-id"] == stream_before
        dry = env.cli("dead", "replay", "r-1", "--force", "--dry-run", input="")
        assert "warning: job r-1 has been sent since" in dry.stderr and "would replay r-1" in dry.stdout, dry
        code, terminal, _ = _on_a_terminal(env, ["dead", "replay", "r-1", "--force"], "n")
        assert code == 1 and "replay 1 job(s) that have been sent already? [y/N]" in terminal, (code, terminal)
        assert env.r.xinfo_stream(env.key("jobs"))["last-generated-id"] == stream_before
        # r-2 was never sent: --force replays it without asking.
        out = env.cli("dead", "replay", "r-2", "--force", input="")
        assert "warning" not in out.stderr and "replayed r-2" in out.stdout, out
        out = env.cli("dead", "replay", "r-1", "--force", "--yes", input="")
        assert "warning: job r-1 has been sent since" in out.stderr and "replayed r-1" in out.stdout, out
        assert env.r.hlen(env.key("replayed")) == replays + 1  # r-2 is new, r-1's link is replaced

        # Not forced, the same: a letter whose job its producer enqueued again and got sent.
        env.r.xadd(env.key("dead"), {"id": "again-1", "job": json.dumps(job("again-1")), "provider": "webhook",
                                     "account": "a", "error_class": "permanent", "error": "HTTP 400"})
        env.r.set(env.key("result:again-1"), json.dumps({"id": "again-1", "status": "sent", "attempts": 1}))
        out = env.cli("dead", "replay", "again-1", check=False, input="")
        assert out.returncode == 2 and "warning: job again-1 has been sent since" in out.stderr, out.stderr
        assert env.result_value("again-1")["status"] == "sent", "nothing replayed"


def test_stats_show_the_dead_count_and_the_oldest_letters_age_never_trimmed():
    with Env() as env:
        stats = env.cli_json("stats")
        assert stats["dead"] == 0 and stats["oldest_dead_at"] is None and stats["oldest_dead_age_ms"] is None, stats
        assert stats["dead_retention"] == "never trimmed", stats
        first_ms = int(time.time() * 1000) - 3 * 3600 * 1000 - 60000
        env.r.xadd(env.key("dead"), _letter(1, 400, "old"), id="%d-0" % first_ms)
        _add_letters(env, 3, start=2)
        stats = env.cli_json("stats")
        assert stats["dead"] == 4 and stats["oldest_dead_at"] == first_ms, stats
        assert 3 * 3600 * 1000 + 60000 <= stats["oldest_dead_age_ms"] < 3 * 3600 * 1000 + 120000, stats
        text = env.cli("stats").stdout
        [line] = [x for x in text.splitlines() if x.startswith("dead ")]
        assert "4  (oldest 3h1m ago; never trimmed)" in line, line


def test_a_bulk_replay_bound_to_its_dry_run_replays_what_it_counted_or_nothing():
    """`dead replay --dry-run` prints the count and the newest letter it counted; the replay
    with --upto and --expect replays exactly those: a letter that died since is left, and
    when what matches changed (a letter replayed meanwhile) nothing is replayed."""
    with Env() as env:
        _add_letters(env, 5)
        dry = env.cli_json("dead", "replay", "--all", "--dry-run")
        assert dry["count"] == 5 and dry["upto"], dry
        text = env.cli("dead", "replay", "--all", "--dry-run").stdout
        assert "--upto %s --expect 5" % dry["upto"] in text, text
        _add_letters(env, 1, start=5)  # died after the dry run
        # One of the counted letters is replayed meanwhile (by someone else): the count no longer holds.
        first = env.r.xrange(env.key("dead"), count=1)[0][0]
        env.cli("dead", "replay", first)
        out = env.cli("dead", "replay", "--all", "--upto", dry["upto"], "--expect", "5", check=False)
        assert out.returncode == 1 and "changed since the dry run" in out.stderr, (out.returncode, out.stderr)
        assert env.r.hlen(env.key("replayed")) == 1
        # Counted again: the four still to replay, up to the same letter; the late one is left.
        out = env.cli("dead", "replay", "--all", "--upto", dry["upto"], "--expect", "4")
        assert "4 dead letter(s) replayed" in out.stdout, out.stdout
        assert env.r.hlen(env.key("replayed")) == 5
        assert env.r.xlen(env.key("jobs")) == 5  # the late letter was not replayed
