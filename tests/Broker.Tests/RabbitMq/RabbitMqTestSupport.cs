using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using Broker.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Broker.Tests.RabbitMq;

/// <summary>Broker nodes on the RabbitMQ backend, started in the test process on their own free ports.</summary>
public static class RabbitNodes
{
    private static readonly HttpClient s_http = new() { Timeout = TimeSpan.FromSeconds(5) };

    /// <summary>
    /// Starts a node on the fixture's RabbitMQ and waits until it is connected (a SEND before that would be refused).
    /// Reconnect backoff is capped at 1 s so outage tests do not wait out the 15 s default.
    /// </summary>
    public static async Task<BrokerServer> StartAsync(RabbitMqServer rabbit, params string[] settings)
    {
        var node = await StartUncheckedAsync(rabbit.AmqpUri, settings);
        await WaitForHealthAsync(node, HttpStatusCode.OK, TimeSpan.FromSeconds(20));
        return node;
    }

    /// <summary>Starts a node without waiting for its RabbitMQ link (which may be down on purpose).</summary>
    public static Task<BrokerServer> StartUncheckedAsync(string amqpUri, params string[] settings) =>
        BrokerServer.StartAsync(["Broker:Backend=RabbitMq", $"Broker:RabbitMq:Uri={amqpUri}", "Broker:RabbitMq:ReconnectMaxDelay=00:00:01", .. settings]);

    /// <summary>Starts <paramref name="count"/> nodes on one RabbitMQ.</summary>
    public static async Task<NodeGroup> StartGroupAsync(RabbitMqServer rabbit, int count)
    {
        var nodes = await Task.WhenAll(Enumerable.Range(0, count).Select(_ => StartAsync(rabbit)));
        return new NodeGroup(nodes);
    }

    /// <summary>The status code of a health endpoint (<c>/health/ready</c> or <c>/health/live</c>) on the WebSocket port.</summary>
    public static async Task<HttpStatusCode> GetHealthAsync(this BrokerServer node, string path = "/health/ready")
    {
        using var response = await s_http.GetAsync(new Uri($"http://127.0.0.1:{node.WebSocketPort}{path}"));
        return response.StatusCode;
    }

    public static Task WaitForHealthAsync(BrokerServer node, HttpStatusCode expected, TimeSpan timeout) =>
        Eventually.UntilAsync(async () => await node.GetHealthAsync() == expected, timeout, $"/health/ready of node :{node.TcpPort} to be {(int)expected}");
}

/// <summary>What this test process has open, read from /proc (Linux).</summary>
public static class ProcessSockets
{
    /// <summary>Established TCP connections from this process to a port on any address.</summary>
    public static int CountConnectionsTo(int port)
    {
        // Sockets of this process, by inode, matched against the kernel's connection tables.
        var inodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                {
                    inodes.Add(target["socket:[".Length..^1]);
                }
            }
            catch (IOException)
            {
                // closed meanwhile
            }
        }

        var count = 0;
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table))
            {
                continue;
            }

            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var remote = fields[2];
                var remotePort = int.Parse(remote[(remote.LastIndexOf(':') + 1)..], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
                if (fields[3] == "01" && remotePort == port && inodes.Contains(fields[9]))
                {
                    count++;
                }
            }
        }

        return count;
    }
}

/// <summary>Several nodes, stopped together.</summary>
public sealed class NodeGroup(BrokerServer[] nodes) : IAsyncDisposable
{
    public BrokerServer this[int index] => nodes[index];

    public IReadOnlyList<BrokerServer> Nodes => nodes;

    public async ValueTask DisposeAsync()
    {
        foreach (var node in nodes)
        {
            await node.DisposeAsync();
        }
    }
}

/// <summary>Polls an asynchronous condition until it holds or a deadline passes.</summary>
public static class Eventually
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > timeout)
            {
                Assert.Fail($"timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            }

            await Task.Delay(50);
        }
    }
}

/// <summary>
/// A plain RabbitMQ.Client connection: the "existing RabbitMQ system" the broker bridges to. Declares, publishes and
/// inspects queues directly, bypassing the broker.
/// </summary>
public sealed class AmqpPeer : IAsyncDisposable
{
    private AmqpPeer(IConnection connection, IChannel channel)
    {
        Connection = connection;
        Channel = channel;
    }

    public IConnection Connection { get; }

    /// <summary>A channel without publisher confirms, as a plain AMQP client would publish.</summary>
    public IChannel Channel { get; }

    public static async Task<AmqpPeer> ConnectAsync(RabbitMqServer rabbit)
    {
        var factory = new ConnectionFactory { Uri = new Uri(rabbit.AmqpUri), ClientProvidedName = "broker-tests amqp peer" };
        var connection = await factory.CreateConnectionAsync();
        return new AmqpPeer(connection, await connection.CreateChannelAsync());
    }

    /// <summary>Ready messages in a queue (passive declare), or null when there is no such queue.</summary>
    public async Task<uint?> ReadyCountAsync(string queue)
    {
        // A failed passive declare closes its channel, so each check has its own.
        var channel = await Connection.CreateChannelAsync();
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404)
        {
            return null;
        }
        finally
        {
            await channel.DisposeAsync();
        }
    }

    /// <summary>Consumers of a queue (passive declare).</summary>
    public async Task<uint> ConsumerCountAsync(string queue)
    {
        var channel = await Connection.CreateChannelAsync();
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue)).ConsumerCount;
        }
        finally
        {
            await channel.DisposeAsync();
        }
    }

    /// <summary>Waits until a queue has no consumer (a subscriber that left has really let go of it).</summary>
    public Task WaitForNoConsumersAsync(string queue) =>
        Eventually.UntilAsync(async () => await ConsumerCountAsync(queue) == 0, TimeSpan.FromSeconds(10), $"no consumers on '{queue}'");

    /// <summary>Whether a queue exists (passive declare); an exclusive queue of another connection counts.</summary>
    public async Task<bool> QueueExistsAsync(string queue)
    {
        var channel = await Connection.CreateChannelAsync();
        try
        {
            await channel.QueueDeclarePassiveAsync(queue);
            return true;
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode is 404 or 405)
        {
            return ex.ShutdownReason.ReplyCode == 405; // RESOURCE_LOCKED: there, but exclusive to its owner
        }
        finally
        {
            await channel.DisposeAsync();
        }
    }

    /// <summary>Whether an exchange exists (passive declare).</summary>
    public async Task<bool> ExchangeExistsAsync(string exchange)
    {
        var channel = await Connection.CreateChannelAsync();
        try
        {
            await channel.ExchangeDeclarePassiveAsync(exchange);
            return true;
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404)
        {
            return false;
        }
        finally
        {
            await channel.DisposeAsync();
        }
    }

    /// <summary>basic.get (auto-ack) until a message is there or the timeout passes; null if none came.</summary>
    public async Task<AmqpMessage?> TryGetAsync(string queue, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (await Channel.BasicGetAsync(queue, autoAck: true) is { } result)
            {
                return new AmqpMessage(result.Exchange, result.RoutingKey, result.BasicProperties, result.Body.ToArray(), result.Redelivered);
            }

            if (clock.Elapsed > timeout)
            {
                return null;
            }

            await Task.Delay(20);
        }
    }

    /// <summary>basic.get until a message is there; fails the test after the timeout.</summary>
    public async Task<AmqpMessage> GetAsync(string queue, TimeSpan? timeout = null)
    {
        var message = await TryGetAsync(queue, timeout ?? TimeSpan.FromSeconds(10));
        Assert.True(message is not null, $"expected a message in AMQP queue '{queue}'");
        return message!;
    }

    public Task PublishAsync(string exchange, string routingKey, string body, BasicProperties? properties = null) =>
        PublishAsync(exchange, routingKey, Encoding.UTF8.GetBytes(body), properties);

    public async Task PublishAsync(string exchange, string routingKey, byte[] body, BasicProperties? properties = null) =>
        await Channel.BasicPublishAsync(exchange, routingKey, mandatory: false, properties ?? new BasicProperties(), body);

    /// <summary>Deletes queues and exchanges a test made, ignoring those already gone.</summary>
    public async Task CleanUpAsync(IEnumerable<string>? queues = null, IEnumerable<string>? exchanges = null)
    {
        var channel = await Connection.CreateChannelAsync();
        try
        {
            foreach (var queue in queues ?? [])
            {
                await channel.QueueDeleteAsync(queue, ifUnused: false, ifEmpty: false);
            }

            foreach (var exchange in exchanges ?? [])
            {
                await channel.ExchangeDeleteAsync(exchange, ifUnused: false);
            }
        }
        finally
        {
            await channel.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Channel.DisposeAsync();
        await Connection.CloseAsync();
        await Connection.DisposeAsync();
    }
}

/// <summary>A message taken from RabbitMQ with basic.get, body copied.</summary>
public sealed record AmqpMessage(string Exchange, string RoutingKey, IReadOnlyBasicProperties Properties, byte[] Body, bool Redelivered)
{
    public string BodyText => Encoding.UTF8.GetString(Body);

    /// <summary>An AMQP header as text (RabbitMQ.Client gives string headers back as UTF-8 bytes).</summary>
    public string? Header(string name) => Properties.Headers?.TryGetValue(name, out var value) == true
        ? value switch
        {
            byte[] utf8 => Encoding.UTF8.GetString(utf8),
            null => null,
            _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
        }
        : null;
}

/// <summary>Captures a node's log lines (at the level the test broker logs: warnings and up).</summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public static LogCapture Attach(BrokerServer node)
    {
        var capture = new LogCapture();
        node.GetService<ILoggerFactory>().AddProvider(capture);
        return capture;
    }

    public IReadOnlyCollection<string> Lines => _lines;

    public bool Contains(string text) => _lines.Any(line => line.Contains(text, StringComparison.Ordinal));

    public ILogger CreateLogger(string categoryName) => new CapturingLogger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class CapturingLogger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)}");
    }
}

public static class RabbitStompExtensions
{
    /// <summary>Receives MESSAGEs on several clients at once until <paramref name="total"/> arrived in all, or the timeout.</summary>
    public static async Task<List<ReceivedFrame>[]> CollectAsync(IReadOnlyList<StompTestClient> clients, int total, TimeSpan timeout)
    {
        var count = 0;
        var clock = Stopwatch.StartNew();
        var results = await Task.WhenAll(clients.Select(async client =>
        {
            var frames = new List<ReceivedFrame>();
            while (Volatile.Read(ref count) < total && clock.Elapsed < timeout)
            {
                if (await client.TryReceiveAsync(TimeSpan.FromMilliseconds(100)) is { } frame)
                {
                    Assert.True(frame.Command == Broker.Stomp.StompCommand.Message, $"expected MESSAGE, got {frame}");
                    frames.Add(frame);
                    Interlocked.Increment(ref count);
                }
            }

            return frames;
        }));
        Assert.True(count >= total, $"expected {total} messages in all within {timeout.TotalSeconds:0.#} s, got {count}");
        return results;
    }

    /// <summary>All values of a header, in order.</summary>
    public static List<string> All(this ReceivedFrame frame, string name) =>
        [.. frame.Headers.Where(h => h.Key == name).Select(h => h.Value)];
}
