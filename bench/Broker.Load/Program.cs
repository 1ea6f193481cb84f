using System.Globalization;
using System.Text.Json;
using Broker.Load;
using Broker.Load.Reporting;
using Broker.Load.Scenarios;
using Broker.Load.Sink;

const string Usage = """
    stompload: STOMP load for any broker, over TCP or WebSocket, loopback only.

      stompload run --scenario p2p|fanout|latency|conns --url tcp://127.0.0.1:PORT|ws://127.0.0.1:PORT/ws [options]
          --login/--passcode/--host    CONNECT credentials and virtual host (guest, guest, /)
          --destination D              default: a fresh /queue/stompload.ID (a /topic/… for fanout)
          --producers P --consumers C  p2p (1, 1)            --subscribers N   fanout (10)
          --body BYTES (100)           --duration S (10)     --warmup S (2)    --drain-timeout S (10)
          --receipt-every N (100)      --receipts-outstanding N (4)
          --window N (10000)           producers stay at most N messages ahead of the consumers
          --rate MSG/S (1000)          latency: paced sends stamped with the time
          --connections N (10000)      conns: idle connections held
          --pid PID                    conns: the broker whose VmRSS is read
          --source-addresses N (1)     spread connections over 127.0.0.1..127.0.0.N
          --connect-concurrency N (64) conns: connections opened at once
          --hold S (0)                 conns: keep the connections open S seconds after measuring
          --sink                       the target is `stompload sink` (p2p: no consumers, it delivers nothing)
          --broker NAME --label TEXT   names for the report
          --json FILE|-                the result as JSON      --quiet   no progress lines
      stompload sink --tcp-port P [--ws-port Q] [--relay]
          answers CONNECT and receipts, discards SENDs: the ceiling of what the machine and the tool can move;
          with --relay, a SEND to a destination someone subscribed to goes to them at once as a MESSAGE (the
          latency floor: run the latency scenario against it without --sink)
      stompload report [--out FILE] RESULT.json...
          medians, spreads and ratios of many runs as markdown tables

    Exit codes: 0 when the run delivered everything it sent exactly once and in order, 1 when not, 2 for bad usage.
    """;

using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    interrupt.Cancel();
};

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.Out.Write(Usage);
    return args.Length == 0 ? 2 : 0;
}

try
{
    switch (args[0])
    {
        case "run":
            return await RunAsync(LoadOptions.Parse(args[1..]), interrupt.Token);
        case "sink":
            return await SinkAsync(args[1..], interrupt.Token);
        case "report":
            return await ComparisonReport.RunAsync(args[1..], interrupt.Token);
        default:
            Console.Error.WriteLine($"stompload: unknown command '{args[0]}'\n");
            Console.Error.Write(Usage);
            return 2;
    }
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"stompload: {ex.Message}");
    return 2;
}

static async Task<int> RunAsync(LoadOptions options, CancellationToken cancellationToken)
{
    var result = new LoadResult
    {
        Broker = options.BrokerName,
        Label = options.Label,
        Transport = options.IsWebSocket ? "ws" : "tcp",
        Scenario = options.Scenario.ToString().ToLowerInvariant(),
        Case = options.CaseName,
        Url = options.Url.ToString(),
        Sink = options.Sink,
        StartedAt = DateTimeOffset.UtcNow,
        Parameters = new LoadParameters
        {
            Producers = options.Scenario == ScenarioKind.P2p ? options.Producers : options.Scenario == ScenarioKind.Conns ? 0 : 1,
            Consumers = options.Scenario == ScenarioKind.P2p ? options.Consumers : options.Scenario == ScenarioKind.Latency ? 1 : 0,
            Subscribers = options.Scenario == ScenarioKind.Fanout ? options.Subscribers : 0,
            BodyBytes = options.BodyBytes,
            Rate = options.Scenario == ScenarioKind.Latency ? options.Rate : null,
            Connections = options.Scenario == ScenarioKind.Conns ? options.Connections : null,
            ReceiptEvery = options.ReceiptEvery,
            ReceiptsOutstanding = options.ReceiptsOutstanding,
            Window = options.Window,
            WarmupSeconds = options.WarmupSeconds,
        },
    };

    Console.Error.WriteLine($"stompload: {result.Case} against {result.Broker} ({options.Url}), {options.WarmupSeconds} s warm-up + {options.DurationSeconds} s");
    try
    {
        result = options.Scenario == ScenarioKind.Conns
            ? await ConnsScenario.RunAsync(options, result, cancellationToken)
            : await FlowScenario.RunAsync(options, result, cancellationToken);
    }
    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
    {
        result.Error = "interrupted";
        result.Ok = false;
    }

    Console.Error.Write(SummaryTable(result));
    if (options.JsonPath is { } path)
    {
        var json = JsonSerializer.Serialize(result, LoadResult.JsonOptions);
        if (path == "-")
        {
            Console.Out.WriteLine(json);
        }
        else
        {
            await File.WriteAllTextAsync(path, json + "\n", CancellationToken.None);
        }
    }

    return result.Ok ? 0 : 1;
}

static async Task<int> SinkAsync(string[] args, CancellationToken cancellationToken)
{
    int? tcpPort = null, wsPort = null;
    var relay = false;
    for (var i = 0; i < args.Length; i++)
    {
        switch (args[i])
        {
            case "--relay": relay = true; break;
            case "--tcp-port" when i + 1 < args.Length: tcpPort = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
            case "--ws-port" when i + 1 < args.Length: wsPort = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
            default: throw new ArgumentException($"unknown option {args[i]}");
        }
    }

    if (tcpPort is null)
    {
        throw new ArgumentException("sink needs --tcp-port");
    }

    await SinkServer.RunAsync(tcpPort.Value, wsPort, relay, cancellationToken);
    return 0;
}

static string SummaryTable(LoadResult r)
{
    var rows = new List<(string, string)>
    {
        ("result", r.Ok ? "ok" : "FAILED" + (r.Error is null ? "" : ": " + r.Error)),
    };
    if (r.Scenario == "conns")
    {
        rows.Add(("connections", $"{r.ConnectionsOpened:N0} of {r.Parameters.Connections:N0}"));
        if (r.RssPerConnectionBytes is { } perConnection)
        {
            rows.Add(("broker RSS", $"{r.RssBeforeBytes / 1048576.0:N1} MB → {r.RssAfterBytes / 1048576.0:N1} MB"));
            rows.Add(("per connection", $"{perConnection / 1024.0:N1} KB"));
        }
    }
    else
    {
        rows.Add(("sent", $"{r.Sent:N0} ({r.SentPerSecond:N0}/s measured)"));
        rows.Add(("received", $"{r.Received:N0} of {r.Expected:N0} expected ({r.ReceivedPerSecond:N0}/s measured)"));
        rows.Add(("lost / duplicated / reordered", $"{r.Lost:N0} / {r.Duplicates:N0} / {r.Reordered:N0}"));
        if (r.Latency is { } l)
        {
            rows.Add(("latency ms", $"p50 {l.P50:0.000}  p90 {l.P90:0.000}  p99 {l.P99:0.000}  p99.9 {l.P999:0.000}  max {l.Max:0.000}  ({l.Samples:N0} samples; {l.MessagesPerWrite:0.0} messages per write)"));
        }
    }

    var width = rows.Max(row => row.Item1.Length);
    return string.Concat(rows.Select(row => $"  {row.Item1.PadRight(width)}  {row.Item2}\n"));
}
