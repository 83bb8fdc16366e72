"""The tools' progress line: live on a terminal (rich), one summary line elsewhere."""

import io

from actors.grades.tools.progress import Progress, format_bytes, format_rows


def test_off_a_terminal_only_the_summary_line_is_printed():
    out = io.StringIO()
    progress = Progress("load", format_rows, out)
    progress.add(1500)
    progress.add(500)
    assert out.getvalue() == ""
    line = progress.finish(", 0 failed")
    assert line.startswith("load: 2,000 rows in ") and line.endswith(", 0 failed")
    assert out.getvalue() == line + "\n"


def test_on_a_terminal_the_live_line_is_replaced_by_the_summary():
    out = io.StringIO()
    progress = Progress("backup", format_bytes, out, interactive=True)
    progress.add(2_500_000)
    line = progress.finish()
    assert line.startswith("backup: 2.5 MB in ")
    assert out.getvalue().rstrip("\n").endswith(line)


def test_the_rate_stops_with_the_clock():
    progress = Progress("load", format_rows, io.StringIO())
    progress.add(10)
    progress.stop()
    assert progress.line() == progress.line()
