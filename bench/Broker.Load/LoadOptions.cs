using System.Globalization;
using System.Net;

namespace Broker.Load;

/// <summary>The scenarios of <c>stompload run</c>.</summary>
internal enum ScenarioKind
{
    /// <summary>P producers → one queue → C competing consumers.</summary>
    P2p,

    /// <summary>One producer → a topic → N subscribers.</summary>
    Fanout,

    /// <summary>Paced sends with a timestamp; end-to-end latency percentiles.</summary>
    Latency,

    /// <summary>N idle connections; the broker's resident memory per connection.</summary>
    Conns,
}

/// <summary>Options of <c>stompload run</c>. Every one has a default, so <c>stompload run --url …</c> does something useful.</summary>
internal sealed class LoadOptions
{
    public ScenarioKind Scenario { get; set; } = ScenarioKind.P2p;

    public Uri Url { get; set; } = new("tcp://127.0.0.1:61613");

    public string Login { get; set; } = "guest";

    public string Passcode { get; set; } = "guest";

    /// <summary>The CONNECT <c>host</c> header (the virtual host); RabbitMQ and StompBroker both know "/".</summary>
    public string Host { get; set; } = "/";

    /// <summary>Defaults per scenario: a fresh queue (p2p, latency) or topic (fan-out) named after the run.</summary>
    public string? Destination { get; set; }

    public int Producers { get; set; } = 1;

    public int Consumers { get; set; } = 1;

    public int Subscribers { get; set; } = 10;

    public int BodyBytes { get; set; } = 100;

    public double DurationSeconds { get; set; } = 10;

    public double WarmupSeconds { get; set; } = 2;

    /// <summary>How long the drain after the producers stop may go without progress before the rest counts as lost.</summary>
    public double DrainTimeoutSeconds { get; set; } = 10;

    /// <summary>A SEND asks for a receipt every this many messages…</summary>
    public int ReceiptEvery { get; set; } = 100;

    /// <summary>…and a producer waits when this many receipts are outstanding.</summary>
    public int ReceiptsOutstanding { get; set; } = 4;

    /// <summary>
    /// Messages a producer may be ahead of the slowest consumer (p2p: of all consumers together). Closes the loop so a
    /// broker is measured at the rate it delivers, not at the rate it can buffer.
    /// </summary>
    public int Window { get; set; } = 10_000;

    /// <summary>Messages per second (latency).</summary>
    public int Rate { get; set; } = 1_000;

    /// <summary>Idle connections to open (conns).</summary>
    public int Connections { get; set; } = 10_000;

    /// <summary>Connections opened at once (conns).</summary>
    public int ConnectConcurrency { get; set; } = 64;

    /// <summary>Seconds the conns scenario keeps its connections open after measuring (for a heap census).</summary>
    public double HoldSeconds { get; set; }

    /// <summary>The broker's process id, whose resident memory the conns scenario reads from /proc.</summary>
    public int? BrokerPid { get; set; }

    /// <summary>Local addresses the connections are spread over (127.0.0.1–127.0.0.N), for more than one address's ports.</summary>
    public int SourceAddresses { get; set; } = 1;

    /// <summary>The target is the sink server: SENDs are discarded, so no delivery is expected.</summary>
    public bool Sink { get; set; }

    /// <summary>The broker's name in reports (defaults to the URL's authority).</summary>
    public string? Broker { get; set; }

    public string? Label { get; set; }

    /// <summary>Where the result goes as JSON ("-" for stdout).</summary>
    public string? JsonPath { get; set; }

    public bool Quiet { get; set; }

    public bool IsWebSocket => Url.Scheme is "ws" or "wss";

    public string BrokerName => Broker ?? Label ?? Url.Authority;

    public IPAddress SourceAddress(int index) =>
        SourceAddresses <= 1 ? IPAddress.Loopback : new IPAddress([127, 0, 0, (byte)(1 + (index % SourceAddresses))]);

    /// <summary>A short name for the case: what a row of the comparison table is.</summary>
    public string CaseName => Scenario switch
    {
        ScenarioKind.P2p => $"p2p {Producers}→{Consumers}, {FormatBytes(BodyBytes)}",
        ScenarioKind.Fanout => $"fan-out 1→{Subscribers}, {FormatBytes(BodyBytes)}",
        ScenarioKind.Latency => $"latency at {Rate.ToString("N0", CultureInfo.InvariantCulture)} msg/s, {FormatBytes(BodyBytes)}",
        ScenarioKind.Conns => $"{Connections.ToString("N0", CultureInfo.InvariantCulture)} idle connections",
        _ => Scenario.ToString(),
    };

    public static string FormatBytes(int bytes) =>
        bytes >= 1024 && bytes % 1024 == 0 ? $"{bytes / 1024} KiB" : $"{bytes} B";

    /// <summary>Parses <c>--name value</c> pairs; throws <see cref="ArgumentException"/> with the offending option.</summary>
    public static LoadOptions Parse(IReadOnlyList<string> args)
    {
        var options = new LoadOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value()
            {
                if (i + 1 >= args.Count)
                {
                    throw new ArgumentException($"{name} needs a value");
                }

                return args[++i];
            }

            switch (name)
            {
                case "--scenario": options.Scenario = ParseScenario(Value()); break;
                case "--url": options.Url = ParseUrl(Value()); break;
                case "--login": options.Login = Value(); break;
                case "--passcode": options.Passcode = Value(); break;
                case "--host": options.Host = Value(); break;
                case "--destination": options.Destination = Value(); break;
                case "--producers": options.Producers = PositiveInt(name, Value()); break;
                case "--consumers": options.Consumers = PositiveInt(name, Value()); break;
                case "--subscribers": options.Subscribers = PositiveInt(name, Value()); break;
                case "--body": options.BodyBytes = NonNegativeInt(name, Value()); break;
                case "--duration": options.DurationSeconds = PositiveDouble(name, Value()); break;
                case "--warmup": options.WarmupSeconds = NonNegativeDouble(name, Value()); break;
                case "--drain-timeout": options.DrainTimeoutSeconds = PositiveDouble(name, Value()); break;
                case "--receipt-every": options.ReceiptEvery = PositiveInt(name, Value()); break;
                case "--receipts-outstanding": options.ReceiptsOutstanding = PositiveInt(name, Value()); break;
                case "--window": options.Window = PositiveInt(name, Value()); break;
                case "--rate": options.Rate = PositiveInt(name, Value()); break;
                case "--connections": options.Connections = PositiveInt(name, Value()); break;
                case "--connect-concurrency": options.ConnectConcurrency = PositiveInt(name, Value()); break;
                case "--hold": options.HoldSeconds = NonNegativeDouble(name, Value()); break;
                case "--pid": options.BrokerPid = PositiveInt(name, Value()); break;
                case "--source-addresses": options.SourceAddresses = PositiveInt(name, Value()); break;
                case "--sink": options.Sink = true; break;
                case "--broker": options.Broker = Value(); break;
                case "--label": options.Label = Value(); break;
                case "--json": options.JsonPath = Value(); break;
                case "--quiet": options.Quiet = true; break;
                default: throw new ArgumentException($"unknown option {name}");
            }
        }

        if (options.SourceAddresses > 254)
        {
            throw new ArgumentException("--source-addresses is at most 254 (127.0.0.1–127.0.0.254)");
        }

        return options;
    }

    private static ScenarioKind ParseScenario(string value) => value switch
    {
        "p2p" => ScenarioKind.P2p,
        "fanout" => ScenarioKind.Fanout,
        "latency" => ScenarioKind.Latency,
        "conns" => ScenarioKind.Conns,
        _ => throw new ArgumentException($"--scenario must be p2p, fanout, latency or conns, not '{value}'"),
    };

    /// <summary>Only loopback targets: the tool is a load generator and must never point at somebody else's host.</summary>
    public static Uri ParseUrl(string value)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var url) || url.Scheme is not ("tcp" or "ws"))
        {
            throw new ArgumentException($"--url must be tcp://127.0.0.1:PORT or ws://127.0.0.1:PORT/PATH, not '{value}'");
        }

        if (!IPAddress.TryParse(url.Host, out var address) && url.Host != "localhost")
        {
            throw new ArgumentException($"--url must name a loopback address, not '{url.Host}'");
        }

        // IPv4 only: connections are bound to 127.x source addresses.
        if (address is not null && (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || !IPAddress.IsLoopback(address)))
        {
            throw new ArgumentException($"--url must be on IPv4 loopback (127.0.0.0/8), not {address}");
        }

        if (url.IsDefaultPort || url.Port <= 0)
        {
            throw new ArgumentException("--url needs an explicit port");
        }

        return url;
    }

    private static int PositiveInt(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"{name} must be a positive integer, not '{value}'");

    private static int NonNegativeInt(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0
            ? n
            : throw new ArgumentException($"{name} must be a non-negative integer, not '{value}'");

    private static double PositiveDouble(string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"{name} must be a positive number, not '{value}'");

    private static double NonNegativeDouble(string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0
            ? n
            : throw new ArgumentException($"{name} must be a non-negative number, not '{value}'");
}
