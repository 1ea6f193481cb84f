using System.Globalization;
using System.Text.RegularExpressions;
using Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.Tests.Operability;

/// <summary>What an operator sees: /metrics in Prometheus text format, and the connection log lines.</summary>
public sealed partial class MetricsAndLogsTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    [Fact]
    public async Task Metrics_count_connections_frames_and_messages_and_report_queue_depth()
    {
        await using var server = await BrokerServer.StartAsync();
        var queue = "/queue/metrics-" + Guid.NewGuid().ToString("N")[..8];

        var before = await ScrapeAsync(server);
        Assert.Contains("# TYPE stompbroker_connections_opened_total counter", before.Text, StringComparison.Ordinal);
        Assert.Equal(0, before.Value("stompbroker_connections_current"));

        await using (var producer = await StompTestClient.ConnectTcpAsync(server.TcpPort))
        {
            await producer.ConnectAsync();
            for (var i = 0; i < 3; i++)
            {
                await producer.SendAsync(queue, "m" + i, receipt: true);
            }

            var during = await ScrapeAsync(server);
            Assert.Equal(1, during.Value("stompbroker_connections_current"));
            Assert.Equal(3, during.Value("stompbroker_frames_received_total", "command=\"SEND\""));
            Assert.Equal(3, during.Value("stompbroker_messages_published_total", "kind=\"Queue\""));
            Assert.Equal(3, during.Value("stompbroker_messages_published_total", $"destination=\"{queue}\""));
            Assert.Equal(3, during.Value("stompbroker_queue_depth", $"destination=\"{queue}\""));
            Assert.True(during.Value("stompbroker_bytes_received_total") > 0);

            await producer.SubscribeAsync(queue, "s1", "client-individual");
            for (var i = 0; i < 3; i++)
            {
                var message = await producer.ReceiveAsync();
                await producer.SendFrameAsync(Stomp.StompCommand.Ack, [("id", message["ack"]!)]);
            }

            await producer.SendAsync("/topic/nobody-" + Guid.NewGuid().ToString("N"), "flush", receipt: true); // the ACKs are processed before this RECEIPT
            var after = await ScrapeAsync(server);
            Assert.Equal(3, after.Value("stompbroker_messages_delivered_total"));
            Assert.Equal(3, after.Value("stompbroker_messages_acked_total"));
            Assert.True(after.Value("stompbroker_frames_sent_total", "kind=\"Message\"") >= 3);
        }

        await EventuallyAsync(async () => (await ScrapeAsync(server)).Value("stompbroker_connections_current") == 0, "the connection count to drop to 0");
        var closed = await ScrapeAsync(server);
        Assert.Equal(1, closed.Value("stompbroker_connections_opened_total", "transport=\"tcp\""));
        Assert.True(closed.Value("stompbroker_connections_closed_total") >= 1);
    }

    [Fact]
    public async Task Refusals_and_errors_are_counted_by_reason()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:MaxConnections=1");
        await using var first = await StompTestClient.ConnectTcpAsync(server.TcpPort);
        await first.ConnectAsync();

        await using (var second = await StompTestClient.ConnectTcpAsync(server.TcpPort))
        {
            await second.ExpectErrorAsync();
        }

        await first.SendRawAsync("BOGUS\n\n\0");
        await first.ExpectErrorAsync();
        await first.ExpectClosedAsync();

        var metrics = await ScrapeAsync(server);
        Assert.Equal(1, metrics.Value("stompbroker_connections_refused_total", "reason=\"limit\""));
        Assert.Equal(1, metrics.Value("stompbroker_errors_total", "kind=\"ProtocolError\""));
    }

    [Fact]
    public async Task Each_connection_logs_one_line_when_it_opens_and_one_with_its_reason_when_it_closes_and_never_a_secret()
    {
        var capture = new LineCapture();
        const string Passcode = "pa55-never-logged";
        const string Token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW5ldmVyLWxvZ2dlZA";
        await using var server = await BrokerServer.StartAsync(
            services => services.AddSingleton<ILoggerProvider>(capture), "Logging:LogLevel:Default=Information");

        string sessionId;
        await using (var client = await StompTestClient.ConnectTcpAsync(server.TcpPort))
        {
            var connected = await client.ConnectAsync("1.2", "0,0", ("login", "someone"), ("passcode", Passcode));
            sessionId = connected["session"]!;
            await client.SendRawAsync("NOPE\n\n\0");
            await client.ExpectErrorAsync();
            await client.ExpectClosedAsync();
        }

        // A refused bearer token is not logged either.
        await using (var refused = await StompTestClient.ConnectTcpAsync(server.TcpPort))
        {
            await refused.SendFrameAsync(Stomp.StompCommand.Connect, [("accept-version", "1.2"), ("authorization", "Bearer " + Token)]);
            await refused.ExpectErrorAsync();
            await refused.ExpectClosedAsync();
        }

        await EventuallyAsync(
            () => Task.FromResult(capture.Lines.Any(l => l.Contains(sessionId, StringComparison.Ordinal) && l.Contains("closed", StringComparison.Ordinal))),
            "the connection's closed line");
        var lines = capture.Lines.Where(l => l.Contains(sessionId, StringComparison.Ordinal)).ToList();
        Assert.Single(lines, l => l.Contains("opened", StringComparison.Ordinal));
        var closedLine = Assert.Single(lines, l => l.Contains("closed", StringComparison.Ordinal));
        Assert.Contains("unknown command", closedLine, StringComparison.Ordinal);
        Assert.DoesNotContain(capture.Lines, l => l.Contains(Passcode, StringComparison.Ordinal) || l.Contains(Token, StringComparison.Ordinal));
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(50);
        }
    }

    private static async Task<Scrape> ScrapeAsync(BrokerServer server)
    {
        using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{server.WebSocketPort}/metrics"));
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
        return new Scrape(await response.Content.ReadAsStringAsync());
    }

    private sealed partial record Scrape(string Text)
    {
        // The sum of a metric's series whose labels contain every given "label=\"value\"" (0 when absent).
        public double Value(string name, params string[] labels)
        {
            var total = 0.0;
            foreach (Match line in SeriesLine().Matches(Text))
            {
                if (line.Groups["name"].Value == name && labels.All(l => line.Groups["labels"].Value.Contains(l, StringComparison.Ordinal)))
                {
                    total += double.Parse(line.Groups["value"].Value, CultureInfo.InvariantCulture);
                }
            }

            return total;
        }

        [GeneratedRegex(@"^(?<name>[a-z_]+)(?<labels>\{[^}]*\})? (?<value>[-0-9.eE+]+)$", RegexOptions.Multiline)]
        private static partial Regex SeriesLine();
    }

    private sealed class LineCapture : ILoggerProvider
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

        public IReadOnlyCollection<string> Lines => _lines;

        public ILogger CreateLogger(string categoryName) => new Logger(_lines);

        public void Dispose()
        {
        }

        private sealed class Logger(System.Collections.Concurrent.ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue(formatter(state, exception) + (exception is null ? "" : " " + exception));
        }
    }
}
