using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using Broker.Stomp;

namespace Broker.Tests.Infrastructure;

/// <summary>The two ways a client reaches the broker; tests that hold for both take one as a [Theory] parameter.</summary>
public enum Transport
{
    Tcp,
    WebSocket,
}

/// <summary>Destination names no other test uses, so tests sharing a broker never see each other's messages.</summary>
public static class Unique
{
    public static string Queue(string hint = "q") => $"/queue/{hint}-{Guid.NewGuid():N}";

    public static string Topic(string hint = "t") => $"/topic/{hint}-{Guid.NewGuid():N}";

    public static string Id(string hint = "id") => $"{hint}-{Guid.NewGuid():N}";

    /// <summary>The name the in-memory backend files a /queue/NAME destination under.</summary>
    public static string QueueName(string destination) => destination["/queue/".Length..];
}

/// <summary>Polls a condition until it holds or a deadline passes (never a fixed sleep).</summary>
public static class Wait
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                Assert.Fail($"timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            }

            await Task.Delay(20);
        }
    }
}

public static class BrokerServerExtensions
{
    /// <summary>Opens a connection (no STOMP yet).</summary>
    public static Task<StompTestClient> OpenAsync(this BrokerServer server, Transport transport) => transport switch
    {
        Transport.Tcp => StompTestClient.ConnectTcpAsync(server.TcpPort),
        _ => StompTestClient.ConnectWebSocketAsync(server.WebSocketUri),
    };

    /// <summary>Opens a connection and completes CONNECT/CONNECTED.</summary>
    public static async Task<StompTestClient> ConnectClientAsync(this BrokerServer server, Transport transport = Transport.Tcp, string acceptVersion = "1.0,1.1,1.2", string heartBeat = "0,0")
    {
        var client = await server.OpenAsync(transport);
        await client.ConnectAsync(acceptVersion, heartBeat);
        return client;
    }

    /// <summary>
    /// Proves the broker still works for everyone else: two fresh clients (one per transport) exchange a message on
    /// a new queue.
    /// </summary>
    public static async Task AssertStillServesOthersAsync(this BrokerServer server)
    {
        await using var consumer = await server.ConnectClientAsync(Transport.WebSocket);
        await using var producer = await server.ConnectClientAsync(Transport.Tcp);
        var queue = Unique.Queue("alive");
        await consumer.SubscribeAsync(queue, "alive");
        await producer.SendAsync(queue, "still here", receipt: true);
        var message = await consumer.ReceiveMessageAsync();
        Assert.Equal("still here", message.BodyText);
    }
}

public static class StompTestClientExtensions
{
    /// <summary>The next frame, which must be a MESSAGE.</summary>
    public static async Task<ReceivedFrame> ReceiveMessageAsync(this StompTestClient client, TimeSpan? timeout = null)
    {
        var frame = await client.ReceiveAsync(timeout);
        Assert.True(frame.Command == StompCommand.Message, $"expected MESSAGE, got {frame}");
        return frame;
    }

    /// <summary>The next <paramref name="count"/> frames, each a MESSAGE.</summary>
    public static async Task<List<ReceivedFrame>> ReceiveMessagesAsync(this StompTestClient client, int count)
    {
        var messages = new List<ReceivedFrame>(count);
        for (var i = 0; i < count; i++)
        {
            messages.Add(await client.ReceiveMessageAsync());
        }

        return messages;
    }

    /// <summary>Asserts no frame arrives for a short while (the one place a test waits for a fixed time).</summary>
    public static async Task ExpectNothingAsync(this StompTestClient client, int milliseconds = 400)
    {
        var frame = await client.TryReceiveAsync(TimeSpan.FromMilliseconds(milliseconds));
        Assert.True(frame is null, $"expected nothing, got {frame}");
    }

    /// <summary>Sends a frame with the given headers and a receipt, and waits for that RECEIPT.</summary>
    public static async Task SendWithReceiptAsync(this StompTestClient client, StompCommand command, params (string Name, string Value)[] headers)
    {
        var receipt = Unique.Id("r");
        await client.SendFrameAsync(command, [.. headers, ("receipt", receipt)]);
        await client.ExpectReceiptAsync(receipt);
    }

    /// <summary>ACK (or NACK) the message by its ack header.</summary>
    public static Task AckAsync(this StompTestClient client, ReceivedFrame message, bool receipt = true, params (string Name, string Value)[] extra) =>
        SettleAsync(client, StompCommand.Ack, message, receipt, extra);

    public static Task NackAsync(this StompTestClient client, ReceivedFrame message, bool receipt = true, params (string Name, string Value)[] extra) =>
        SettleAsync(client, StompCommand.Nack, message, receipt, extra);

    /// <summary>The connection still works: the client can subscribe, send to itself and receive.</summary>
    public static async Task AssertAliveAsync(this StompTestClient client)
    {
        var queue = Unique.Queue("alive");
        var id = Unique.Id("alive");
        await client.SubscribeAsync(queue, id);
        await client.SendAsync(queue, "ping");
        var message = await client.ReceiveMessageAsync();
        Assert.Equal("ping", message.BodyText);
        Assert.Equal(id, message["subscription"]);
    }

    /// <summary>Asserts the next frame is an ERROR and the server then closes the connection.</summary>
    public static async Task<ReceivedFrame> ExpectErrorThenCloseAsync(this StompTestClient client, string? receiptId = null)
    {
        var error = await client.ExpectErrorAsync();
        Assert.Equal(receiptId, error["receipt-id"]);
        var after = await client.ExpectClosedAsync();
        Assert.Empty(after);
        return error;
    }

    /// <summary>The WebSocket messages received so far (a copy).</summary>
    public static List<(WebSocketMessageType Type, int Length)> WebSocketMessagesSnapshot(this StompTestClient client)
    {
        lock (client.WebSocketMessages)
        {
            return [.. client.WebSocketMessages];
        }
    }

    private static async Task SettleAsync(StompTestClient client, StompCommand command, ReceivedFrame message, bool receipt, (string Name, string Value)[] extra)
    {
        var ack = message["ack"];
        Assert.False(ack is null, $"the MESSAGE has no ack header: {message}");
        if (receipt)
        {
            await client.SendWithReceiptAsync(command, [("id", ack!), .. extra]);
        }
        else
        {
            await client.SendFrameAsync(command, [("id", ack!), .. extra]);
        }
    }
}

/// <summary>Raw bytes of hand-written frames.</summary>
public static class Frames
{
    public static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>A 1.2 SEND with content-length, written by hand.</summary>
    public static byte[] Send(string destination, byte[] body, params (string Name, string Value)[] headers)
    {
        var head = new StringBuilder("SEND\n").Append("destination:").Append(destination).Append('\n');
        foreach (var (name, value) in headers)
        {
            head.Append(name).Append(':').Append(value).Append('\n');
        }

        head.Append("content-length:").Append(body.Length).Append("\n\n");
        return [.. Encoding.UTF8.GetBytes(head.ToString()), .. body, 0];
    }
}
