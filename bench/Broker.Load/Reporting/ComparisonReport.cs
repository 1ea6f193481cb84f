using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Broker.Load.Reporting;

/// <summary>
/// <c>stompload report</c>: result files of many runs → markdown tables, one per scenario, a row per case and
/// transport, a column per broker with the median and the spread (min–max) of its runs, then the ratios the
/// performance targets are stated in.
/// </summary>
internal static class ComparisonReport
{
    // The names bench/compare.sh gives the brokers; others sort after them.
    private const string Sink = "sink";
    private const string OursInMemory = "stompbroker-memory";
    private const string OursOnRabbitMq = "stompbroker-rabbitmq";
    private const string RabbitMq = "rabbitmq";
    private const string ActiveMq = "activemq";
    private static readonly string[] KnownOrder = [Sink, OursInMemory, OursOnRabbitMq, RabbitMq, ActiveMq];

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Build(IReadOnlyList<LoadResult> results)
    {
        var brokers = results.Select(r => r.Broker).Distinct()
            .OrderBy(b => Array.IndexOf(KnownOrder, b) is var i && i >= 0 ? i : KnownOrder.Length)
            .ThenBy(b => b, StringComparer.Ordinal)
            .ToList();
        var text = new StringBuilder();
        foreach (var scenario in new[] { "p2p", "fanout", "latency", "conns" })
        {
            var rows = results.Where(r => r.Scenario == scenario)
                .GroupBy(r => (r.Case, r.Transport))
                .OrderBy(g => CaseOrder(g.First()))
                .ThenBy(g => g.Key.Transport == "tcp" ? 0 : 1)
                .ToList();
            if (rows.Count == 0)
            {
                continue;
            }

            text.Append(CultureInfo.InvariantCulture, $"### {Title(scenario)}\n\n");
            text.Append("| case | transport | ");
            text.AppendJoin(" | ", brokers.Select(DisplayName));
            text.Append(" | ").AppendJoin(" | ", RatioHeaders(scenario)).Append(" |\n");
            text.Append("| --- | --- |").Append(string.Concat(Enumerable.Repeat(" ---: |", brokers.Count + RatioHeaders(scenario).Length))).Append('\n');
            foreach (var row in rows)
            {
                var cells = brokers.ToDictionary(b => b, b => Summarize(row.Where(r => r.Broker == b).ToList(), scenario));
                text.Append(CultureInfo.InvariantCulture, $"| {row.Key.Case} | {(row.Key.Transport == "ws" ? "WebSocket" : "TCP")} | ");
                text.AppendJoin(" | ", brokers.Select(b => cells[b].Text));
                text.Append(" | ").AppendJoin(" | ", Ratios(scenario, cells, row.First())).Append(" |\n");
            }

            text.Append('\n').Append(Legend(scenario)).Append("\n\n");
        }

        var failures = results.Where(r => !r.Ok).ToList();
        if (failures.Count > 0)
        {
            text.Append("Runs that failed (left out of the medians):\n\n");
            foreach (var failure in failures)
            {
                text.Append(CultureInfo.InvariantCulture,
                    $"- {DisplayName(failure.Broker)}, {failure.Case}, {failure.Transport}: {failure.Error ?? $"lost {failure.Lost:N0}, duplicates {failure.Duplicates:N0}, reordered {failure.Reordered:N0}"}\n");
            }

            text.Append('\n');
        }

        return text.ToString();
    }

    public static async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        string? output = null;
        var files = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--out" when i + 1 < args.Count: output = args[++i]; break;
                case "--runs" when i + 1 < args.Count: i++; break; // informational: every file given is a run
                default: files.Add(args[i]); break;
            }
        }

        if (files.Count == 0)
        {
            throw new ArgumentException("report needs result files (RESULT.json...)");
        }

        var results = new List<LoadResult>();
        foreach (var file in files)
        {
            try
            {
                await using var stream = File.OpenRead(file);
                results.Add(await JsonSerializer.DeserializeAsync<LoadResult>(stream, LoadResult.JsonOptions, cancellationToken)
                    ?? throw new JsonException("empty"));
            }
            catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"{file}: not a readable result ({ex.Message})", ex);
            }
        }

        var markdown = Build(results);
        if (output is null or "-")
        {
            Console.Out.Write(markdown);
        }
        else
        {
            await File.WriteAllTextAsync(output, markdown, cancellationToken);
        }

        return 0;
    }

    private sealed record Cell(string Text, double? Median);

    private static Cell Summarize(List<LoadResult> runs, string scenario)
    {
        if (runs.Count == 0)
        {
            return new Cell("n/a", null);
        }

        var ok = runs.Where(r => r.Ok).Select(r => Metric(r, scenario)).Where(v => v is not null).Select(v => v!.Value).OrderBy(v => v).ToList();
        if (ok.Count == 0)
        {
            return new Cell($"failed ({runs.Count} runs)", null);
        }

        var median = ok.Count % 2 == 1 ? ok[ok.Count / 2] : (ok[(ok.Count / 2) - 1] + ok[ok.Count / 2]) / 2;
        var spread = ok.Count > 1 ? $" ({Format(ok[0], scenario)}–{Format(ok[^1], scenario)})" : "";
        var failed = ok.Count < runs.Count ? $", {runs.Count - ok.Count} of {runs.Count} failed" : "";
        return new Cell($"**{Format(median, scenario)}**{spread}{failed}", median);
    }

    // The headline number: deliveries per second (the sink delivers none, so what it accepted), p99 in ms, or bytes
    // per connection.
    private static double? Metric(LoadResult result, string scenario) => scenario switch
    {
        "p2p" or "fanout" => result.Sink ? result.SentPerSecond : result.ReceivedPerSecond,
        "latency" => result.Sink ? null : result.Latency?.P99,
        "conns" => result.RssPerConnectionBytes,
        _ => null,
    };

    private static string Format(double value, string scenario) => scenario switch
    {
        "latency" => value.ToString(value < 10 ? "0.00" : "0.0", Invariant),
        "conns" => (value / 1024).ToString("0.0", Invariant),
        _ => value >= 1_000_000 ? (value / 1_000_000).ToString("0.00", Invariant) + " M" : (value / 1000).ToString("0.0", Invariant) + " k",
    };

    private static string[] RatioHeaders(string scenario) => scenario switch
    {
        "latency" => ["ours (in-memory) ÷ best reference", "target ≤ 0.33 (at 10,000 msg/s)"],
        "conns" => ["ours (in-memory) per connection", "target ≤ 10 KB"],
        _ => ["ours (in-memory) ÷ best reference", "target ≥ 2", "ours (RabbitMQ backend) ÷ RabbitMQ", "target ≥ 1"],
    };

    private static IEnumerable<string> Ratios(string scenario, Dictionary<string, Cell> cells, LoadResult sample)
    {
        double? Median(string broker) => cells.TryGetValue(broker, out var cell) ? cell.Median : null;
        var references = new[] { Median(RabbitMq), Median(ActiveMq) }.Where(v => v is not null).Select(v => v!.Value).ToList();
        var ours = Median(OursInMemory);
        switch (scenario)
        {
            case "latency":
            {
                var best = references.Count > 0 ? references.Min() : (double?)null;
                var ratio = ours / best;

                // The target is stated at 10,000 msg/s; other rates are shown for the shape of the curve.
                return [RatioText(ratio), sample.Parameters.Rate == 10_000 ? Verdict(ratio is not null ? ratio <= 1.0 / 3 : null) : "(no target)"];
            }

            case "conns":
            {
                var kb = ours / 1024;
                return [kb is null ? "—" : kb.Value.ToString("0.0", Invariant) + " KB", Verdict(kb is not null ? kb <= 10 : null)];
            }

            default:
            {
                var best = references.Count > 0 ? references.Max() : (double?)null;
                var inMemory = ours / best;
                var onRabbitMq = Median(OursOnRabbitMq) / Median(RabbitMq);
                return [RatioText(inMemory), Verdict(inMemory is not null ? inMemory >= 2 : null), RatioText(onRabbitMq), Verdict(onRabbitMq is not null ? onRabbitMq >= 1 : null)];
            }
        }
    }

    private static string RatioText(double? ratio) => ratio is null ? "—" : ratio.Value.ToString("0.00", Invariant) + "×";

    private static string Verdict(bool? met) => met switch { true => "met", false => "**missed**", null => "—" };

    private static string Title(string scenario) => scenario switch
    {
        "p2p" => "Point to point: deliveries per second (queue, competing consumers)",
        "fanout" => "Fan-out: deliveries per second (topic, every subscriber gets every message)",
        "latency" => "Latency: p99 end to end, milliseconds (paced producer → queue → consumer)",
        "conns" => "Idle connections: broker resident memory per connection, KB",
        _ => scenario,
    };

    private static string Legend(string scenario) => scenario switch
    {
        "p2p" or "fanout" => "Each cell: the median of the runs in bold, then the slowest–fastest run. The sink row counts messages accepted (it delivers none). A run counts only if nothing was lost, duplicated or reordered.",
        "latency" => "Each cell: the median p99 of the runs, then the best–worst p99. Latency is from the producer's write to the consumer's parse, on one clock; the warm-up is left out. The sink relays each SEND to the subscriber at once (no queue): its column is the floor of the tool and the machine.",
        "conns" => "Each cell: (broker VmRSS with the connections open − VmRSS before) ÷ connections, median of the runs, in KB (1,024 bytes).",
        _ => "",
    };

    private static string DisplayName(string broker) => broker switch
    {
        Sink => "sink (no broker)",
        OursInMemory => "StompBroker, in-memory",
        OursOnRabbitMq => "StompBroker, RabbitMQ backend",
        RabbitMq => "RabbitMQ 3.10",
        ActiveMq => "ActiveMQ 5.17",
        _ => broker,
    };

    private static int CaseOrder(LoadResult result) =>
        (result.Parameters.Producers * 1000) + (result.Parameters.Subscribers * 10) + result.Parameters.BodyBytes / 1024 + (result.Parameters.Rate ?? 0);
}
