"""DogStatsD lines as the datadog client writes them, and lines that are not."""

from botscore.observability.statsd_lines import Sample, parse_datagram, parse_line


def test_a_count_with_tags():
    sample = parse_line("botscore.classifier.scored:500|c|#component:classifier,model:b:2")
    assert sample == Sample(
        "botscore.classifier.scored", 500.0, "c", frozenset({"component:classifier", "model:b:2"})
    )
    assert sample.tag("model") == "b:2"
    assert sample.tag("reason") is None


def test_a_sampled_count_stands_for_more():
    sample = parse_line("x.y:3|c|@0.5")
    assert sample is not None and sample.count == 6.0 and sample.tags == frozenset()


def test_gauges_and_histograms():
    assert parse_line("a.lag:12|g|#partition:0").kind == "g"
    assert parse_line("a.seconds:0.002|h").value == 0.002


def test_values_no_chart_can_draw_are_not_metrics():
    """NaN, infinities or a 300-digit number would end ``botscore top --png`` in a traceback."""
    lines = ["a:nan|g", "a:inf|c", "a:-inf|h", "a:1e308|g", "a:1|c|@0", "a:1|c|@2", "a:1|c|@nan"]
    samples, bad = parse_datagram("\n".join([*lines, "a:9007199254740992|g"]).encode())
    assert bad == len(lines)
    assert [s.value for s in samples] == [2.0**53]


def test_lines_that_are_not_metrics_are_counted_not_fatal():
    samples, bad = parse_datagram(b"ok.one:1|c\nno-colon\nx:1|q\nx:abc|c\n\nok.two:2|g\ny:1|c|@x")
    assert [s.name for s in samples] == ["ok.one", "ok.two"]
    assert bad == 4
    assert parse_datagram(b"\xff\xfe:1|c") == ([Sample("\ufffd\ufffd", 1.0, "c", frozenset())], 0)
