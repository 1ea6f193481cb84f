using Broker.Load.Reporting;
using Broker.Load.Tracking;

namespace Broker.Tests.LoadTool;

/// <summary>How stompload counts (sequence bitmaps) and reports (medians, ratios, verdicts), on numbers made by hand.</summary>
public sealed class TrackingAndReportTests
{
    [Fact]
    public void SequenceSet_in_order_counts_each_once_with_nothing_wrong()
    {
        var set = Fill(Enumerable.Range(0, 1000));

        Assert.Equal(1000, set.Count);
        Assert.Equal(0, set.Duplicates);
        Assert.Equal(0, set.Reordered);
        Assert.Equal(1000, SequenceSet.UnionCount([set], 1000));
    }

    [Fact]
    public void SequenceSet_counts_a_repeat_as_a_duplicate_not_as_a_new_number()
    {
        var set = Fill([0, 1, 1, 2, 0, 3, 3, 3]);

        Assert.Equal(4, set.Count);
        Assert.Equal(4, set.Duplicates);
        // A repeat of an earlier number is a duplicate, not also a step backwards.
        Assert.Equal(0, set.Reordered);
    }

    [Fact]
    public void SequenceSet_counts_each_step_backwards_as_a_reorder()
    {
        var set = Fill([1, 0, 3, 2, 4, 10, 5, 6]);

        Assert.Equal(8, set.Count);
        Assert.Equal(0, set.Duplicates);
        Assert.Equal(3, set.Reordered); // 0 after 1, 2 after 3, 5 after 10
    }

    [Fact]
    public void SequenceSet_grows_for_high_numbers()
    {
        var set = Fill([5_000_000, 70_000, 5_000_000]);

        Assert.Equal(2, set.Count);
        Assert.Equal(1, set.Duplicates);
        Assert.Equal(1, set.Reordered);
        Assert.Equal(2, SequenceSet.UnionCount([set], 5_000_001));
        Assert.Equal(1, SequenceSet.UnionCount([set], 5_000_000));
    }

    [Fact]
    public void UnionCount_counts_numbers_held_by_several_sets_once_and_only_those_below_the_limit()
    {
        // Competing consumers of one queue: each has some of a producer's messages, one number twice.
        var a = Fill([0, 1, 2, 5, 63, 64]);
        var b = Fill([2, 3, 4, 65, 127, 128, 200]);

        Assert.Equal(12, SequenceSet.UnionCount([a, b], 201));
        Assert.Equal(10, SequenceSet.UnionCount([a, b], 128)); // 0–5, 63, 64, 65, 127
        Assert.Equal(7, SequenceSet.UnionCount([a, b], 64)); // 0–5, 63
        Assert.Equal(6, SequenceSet.UnionCount([a, b], 63));
        Assert.Equal(1, SequenceSet.UnionCount([a, b], 1));
        Assert.Equal(0, SequenceSet.UnionCount([a, b], 0));
        Assert.Equal(0, SequenceSet.UnionCount([], 1000));
        Assert.Equal(13, a.Count + b.Count); // the shared 2 is counted by both sets alone
    }

    [Fact]
    public void Report_shows_medians_ratios_and_verdicts_and_leaves_failed_runs_out()
    {
        const string P2p = "p2p 1→1, 100 B";
        LoadResult[] results =
        [
            Throughput("sink", P2p, 1_000_000, sink: true),
            Throughput("stompbroker-memory", P2p, 100_000),
            Throughput("stompbroker-memory", P2p, 300_000),
            Throughput("stompbroker-memory", P2p, 200_000),
            Throughput("stompbroker-memory", P2p, 900_000, ok: false, error: "consumer 0: the broker closed the connection"),
            Throughput("stompbroker-rabbitmq", P2p, 45_000),
            Throughput("stompbroker-rabbitmq", P2p, 44_000),
            Throughput("stompbroker-rabbitmq", P2p, 46_000),
            Throughput("rabbitmq", P2p, 60_000),
            Throughput("rabbitmq", P2p, 40_000),
            Throughput("rabbitmq", P2p, 50_000),
            Throughput("activemq", P2p, 80_000),
            Throughput("activemq", P2p, 100_000),
            Throughput("activemq", P2p, 90_000),
            // Another case where ours is not twice the best reference.
            Throughput("stompbroker-memory", "p2p 4→4, 100 B", 150_000, producers: 4),
            Throughput("rabbitmq", "p2p 4→4, 100 B", 100_000, producers: 4),
            Throughput("stompbroker-rabbitmq", "p2p 4→4, 100 B", 120_000, producers: 4),
        ];

        var report = ComparisonReport.Build(results);

        var table = Table(report, "| case | transport |");
        // Brokers in the known order, each under its display name.
        Assert.Equal(
            ["case", "transport", "sink (no broker)", "StompBroker, in-memory", "StompBroker, RabbitMQ backend", "RabbitMQ 3.10", "ActiveMQ 5.17"],
            table.Header.Take(7));

        var one = table.Row(P2p);
        Assert.Equal("TCP", one["transport"]);
        Assert.Equal("**1.00 M**", one["sink (no broker)"]);
        // The median of the three good runs (not of all four: the failed 900 k one is out), then the spread.
        Assert.Equal("**200.0 k** (100.0 k–300.0 k), 1 of 4 failed", one["StompBroker, in-memory"]);
        Assert.Equal("**45.0 k** (44.0 k–46.0 k)", one["StompBroker, RabbitMQ backend"]);
        Assert.Equal("**50.0 k** (40.0 k–60.0 k)", one["RabbitMQ 3.10"]);
        Assert.Equal("**90.0 k** (80.0 k–100.0 k)", one["ActiveMQ 5.17"]);
        // 200 k ÷ the best reference (ActiveMQ, 90 k), and 45 k ÷ RabbitMQ's 50 k.
        Assert.Equal("2.22×", one["ours (in-memory) ÷ best reference"]);
        Assert.Equal("met", one["target ≥ 2"]);
        Assert.Equal("0.90×", one["ours (RabbitMQ backend) ÷ RabbitMQ"]);
        Assert.Equal("**missed**", one["target ≥ 1"]);

        var four = table.Row("p2p 4→4, 100 B");
        Assert.Equal("n/a", four["ActiveMQ 5.17"]);
        Assert.Equal("1.50×", four["ours (in-memory) ÷ best reference"]);
        Assert.Equal("**missed**", four["target ≥ 2"]);
        Assert.Equal("1.20×", four["ours (RabbitMQ backend) ÷ RabbitMQ"]);
        Assert.Equal("met", four["target ≥ 1"]);
        Assert.True(table.RowIndex(P2p) < table.RowIndex("p2p 4→4, 100 B"), "cases should be in order of their parameters");

        // The failed run is listed with its error.
        var failures = report[report.IndexOf("Runs that failed", StringComparison.Ordinal)..];
        Assert.Contains("- StompBroker, in-memory, p2p 1→1, 100 B, tcp: consumer 0: the broker closed the connection", failures, StringComparison.Ordinal);
        Assert.Single(failures.Split('\n'), line => line.StartsWith("- ", StringComparison.Ordinal));
    }

    [Fact]
    public void Report_of_latency_and_connections_judges_against_their_targets()
    {
        const string Slow = "latency at 1,000 msg/s, 100 B";
        const string Fast = "latency at 10,000 msg/s, 100 B";
        LoadResult[] results =
        [
            Latency("stompbroker-memory", Slow, 1.0, rate: 1_000),
            Latency("stompbroker-memory", Slow, 1.4, rate: 1_000),
            Latency("rabbitmq", Slow, 4.0, rate: 1_000),
            Latency("activemq", Slow, 5.0, rate: 1_000),
            Latency("stompbroker-memory", Fast, 2.0, rate: 10_000),
            Latency("rabbitmq", Fast, 4.0, rate: 10_000),
            Connections("stompbroker-memory", 8 * 1024),
            Connections("stompbroker-memory", 9 * 1024),
            Connections("stompbroker-memory", 10 * 1024),
            Connections("rabbitmq", 100 * 1024),
            Connections("activemq", 50 * 1024, ok: false),
        ];

        var report = ComparisonReport.Build(results);

        var latency = Table(report, "### Latency");
        var slow = latency.Row(Slow);
        // An even number of runs: the median is the mean of the middle two.
        Assert.Equal("**1.20** (1.00–1.40)", slow["StompBroker, in-memory"]);
        // Lower is better: ours ÷ the best (lowest) reference, 1.2 ÷ 4.
        Assert.Equal("0.30×", slow["ours (in-memory) ÷ best reference"]);
        Assert.Equal("(no target)", slow["target ≤ 0.33 (at 10,000 msg/s)"]); // the target is stated at 10,000 msg/s
        var fast = latency.Row(Fast);
        Assert.Equal("0.50×", fast["ours (in-memory) ÷ best reference"]);
        Assert.Equal("**missed**", fast["target ≤ 0.33 (at 10,000 msg/s)"]);

        var connections = Table(report, "### Idle connections").Row("100 idle connections");
        Assert.Equal("**9.0** (8.0–10.0)", connections["StompBroker, in-memory"]);
        Assert.Equal("9.0 KB", connections["ours (in-memory) per connection"]);
        Assert.Equal("met", connections["target ≤ 10 KB"]);
        Assert.Equal("failed (1 runs)", connections["ActiveMQ 5.17"]);
        Assert.Contains("- ActiveMQ 5.17, 100 idle connections, tcp: lost 0, duplicates 0, reordered 0", report, StringComparison.Ordinal);
    }

    [Fact]
    public void Report_without_our_broker_or_references_has_no_verdict()
    {
        var report = ComparisonReport.Build([Throughput("rabbitmq", "p2p 1→1, 100 B", 50_000), Throughput("stompbroker-memory", "p2p 1→1, 100 B", 0, ok: false)]);

        var row = Table(report, "| case | transport |").Row("p2p 1→1, 100 B");
        Assert.Equal("failed (1 runs)", row["StompBroker, in-memory"]);
        Assert.Equal("—", row["ours (in-memory) ÷ best reference"]);
        Assert.Equal("—", row["target ≥ 2"]);
        Assert.DoesNotContain("### Latency", report, StringComparison.Ordinal);
    }

    private static SequenceSet Fill(IEnumerable<int> sequences)
    {
        var set = new SequenceSet();
        foreach (var sequence in sequences)
        {
            set.Add(sequence);
        }

        return set;
    }

    private static LoadResult Result(string broker, string scenario, string @case, bool ok, string? error) => new()
    {
        Broker = broker,
        Scenario = scenario,
        Case = @case,
        Transport = "tcp",
        Ok = ok,
        Error = error,
        Lost = 0,
    };

    private static LoadResult Throughput(string broker, string @case, double perSecond, bool ok = true, string? error = null, bool sink = false, int producers = 1)
    {
        var result = Result(broker, "p2p", @case, ok, error);
        result.Sink = sink;
        result.Parameters.Producers = producers;
        result.SentPerSecond = sink ? perSecond : perSecond * 1.5; // the report must take deliveries, not sends
        result.ReceivedPerSecond = sink ? 0 : perSecond;
        return result;
    }

    private static LoadResult Latency(string broker, string @case, double p99, int rate)
    {
        var result = Result(broker, "latency", @case, ok: true, error: null);
        result.Parameters.Rate = rate;
        result.Latency = new LatencySummary { Samples = 1000, P50 = p99 / 4, P90 = p99 / 2, P99 = p99, P999 = p99 * 2, Max = p99 * 3, Mean = p99 / 3 };
        return result;
    }

    private static LoadResult Connections(string broker, long perConnection, bool ok = true)
    {
        var result = Result(broker, "conns", "100 idle connections", ok, error: null);
        result.Parameters.Connections = 100;
        result.ConnectionsOpened = 100;
        result.RssPerConnectionBytes = perConnection;
        return result;
    }

    // The markdown table that follows the first line starting with `start`: its header and its rows as cells by column.
    private static MarkdownTable Table(string report, string start)
    {
        var lines = report.Split('\n');
        var at = Array.FindIndex(lines, l => l.StartsWith(start, StringComparison.Ordinal));
        Assert.True(at >= 0, $"no '{start}' in the report:\n{report}");
        while (!lines[at].StartsWith("| case", StringComparison.Ordinal))
        {
            at++;
        }

        var rows = lines.Skip(at + 2).TakeWhile(l => l.StartsWith('|')).Select(Cells).ToList();
        return new MarkdownTable(Cells(lines[at]), rows, report);
    }

    private static string[] Cells(string line) => line.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray();

    private sealed record MarkdownTable(string[] Header, List<string[]> Rows, string Report)
    {
        public int RowIndex(string @case) => Rows.FindIndex(r => r[0] == @case);

        public Dictionary<string, string> Row(string @case)
        {
            var index = RowIndex(@case);
            Assert.True(index >= 0, $"no row '{@case}' in:\n{Report}");
            Assert.Equal(Header.Length, Rows[index].Length);
            return Header.Zip(Rows[index]).ToDictionary(p => p.First, p => p.Second);
        }
    }
}
