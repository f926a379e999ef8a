"""The harness's log reader (tests/workers.LogFile), which every wait for a process's line
goes through: it must not miss a line however much the process prints around it (issue 16:
a worker's " ready." scrolled out of a 6,000-character tail and the wait ran out)."""

from tests.workers import LogFile


def test_it_finds_a_line_followed_by_more_than_any_tail(tmp_path):
    path = tmp_path / "worker.log"
    log = LogFile(path)
    path.write_text("starting\n")
    assert not log.has_printed(" ready.")
    with path.open("a") as out:
        out.write("[tasks]\ncelery@host ready.\n")
        out.write("Task disclosure.tasks.requests_sweep[x] received\n" * 2000)  # ~100 kB
    assert log.has_printed(" ready.")
    assert " ready." not in log.tail()  # what the old wait read


def test_it_finds_a_line_written_in_two_pieces_between_two_polls(tmp_path):
    path = tmp_path / "worker.log"
    log = LogFile(path)
    path.write_text("x" * 10_000 + "celery@host re")
    assert not log.has_printed(" ready.")
    with path.open("a") as out:
        out.write("ady.\n" + "y" * 10_000)
    assert log.has_printed(" ready.")


def test_it_remembers_a_line_it_has_seen(tmp_path):
    path = tmp_path / "worker.log"
    path.write_text("beat: Starting...\n")
    log = LogFile(path)
    assert log.has_printed("beat: Starting...")
    path.write_text("")  # even if the file were truncated afterwards
    assert log.has_printed("beat: Starting...")


def test_each_text_is_looked_for_from_the_start_of_the_log(tmp_path):
    path = tmp_path / "worker.log"
    path.write_text("one\ntwo\n" + "z" * 20_000)
    log = LogFile(path)
    assert log.has_printed("two")
    assert log.has_printed("one")  # asked later, after the reader had moved on for "two"


def test_a_log_appended_to_is_read_from_where_the_new_process_began(tmp_path):
    path = tmp_path / "worker.log"
    path.write_text("old worker ready.\n")
    log = LogFile(path, start=path.stat().st_size)
    assert not log.has_printed(" ready.")
    with path.open("a") as out:
        out.write("new worker ready.\n")
    assert log.has_printed(" ready.")
