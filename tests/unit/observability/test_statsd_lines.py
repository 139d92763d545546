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


def test_lines_that_are_not_metrics_are_counted_not_fatal():
    samples, bad = parse_datagram(b"ok.one:1|c\nno-colon\nx:1|q\nx:abc|c\n\nok.two:2|g\ny:1|c|@x")
    assert [s.name for s in samples] == ["ok.one", "ok.two"]
    assert bad == 4
    assert parse_datagram(b"\xff\xfe:1|c") == ([Sample("\ufffd\ufffd", 1.0, "c", frozenset())], 0)
