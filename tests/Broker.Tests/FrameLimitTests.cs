using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>A broker with a 16 KiB frame limit, 10 headers and 200-byte header lines, so over-limit frames stay small.</summary>
public sealed class SmallLimitsBrokerFixture : IAsyncLifetime
{
    public const int MaxFrameBytes = 16 * 1024;
    public const int MaxHeaders = 10;
    public const int MaxHeaderLineBytes = 200;

    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
        $"Broker:Limits:MaxFrameBytes={MaxFrameBytes}",
        "Broker:Limits:MaxFrameBytesBeforeConnect=1024",
        $"Broker:Limits:MaxHeaders={MaxHeaders}",
        $"Broker:Limits:MaxHeaderLineBytes={MaxHeaderLineBytes}");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Over-limit frames: ERROR, then close (WebSocket 1009); others unaffected (checklist 17).</summary>
public sealed class FrameLimitTests(SmallLimitsBrokerFixture broker) : IClassFixture<SmallLimitsBrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp, false)]
    [InlineData(Transport.Tcp, true)]
    [InlineData(Transport.WebSocket, false)]
    [InlineData(Transport.WebSocket, true)]
    public async Task A_frame_over_the_size_limit_is_refused(Transport transport, bool withContentLength)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q");

        // Just under the limit passes...
        var fits = new byte[SmallLimitsBrokerFixture.MaxFrameBytes - 200];
        Array.Fill(fits, (byte)'a');
        await client.SendRawAsync(Frames.Send(queue, fits));
        Assert.Equal(fits.Length, (await client.ReceiveMessageAsync()).Body.Length);

        // ...just over does not.
        var tooBig = new byte[SmallLimitsBrokerFixture.MaxFrameBytes + 1];
        Array.Fill(tooBig, (byte)'b');
        var frame = withContentLength
            ? Frames.Send(queue, tooBig)
            : [.. Encoding.UTF8.GetBytes($"SEND\ndestination:{queue}\n\n"), .. tooBig, 0];
        await SendTolerantAsync(client, frame);

        await client.ExpectErrorThenCloseAsync();
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, client.CloseStatus);
        }

        await Server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Too_many_headers_are_refused(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q");

        // destination + content-length + 8 = the limit.
        await client.SendRawAsync(Frames.Send(queue, Frames.Bytes("ok"), [.. Enumerable.Range(0, SmallLimitsBrokerFixture.MaxHeaders - 2).Select(i => ($"h{i}", "v"))]));
        Assert.Equal("v", (await client.ReceiveMessageAsync())["h7"]);

        await client.SendRawAsync(Frames.Send(queue, Frames.Bytes("no"), [.. Enumerable.Range(0, SmallLimitsBrokerFixture.MaxHeaders - 1).Select(i => ($"h{i}", "v"))]));
        await client.ExpectErrorThenCloseAsync();
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, client.CloseStatus);
        }

        await Server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_header_line_over_the_limit_is_refused(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q");

        var longest = new string('x', SmallLimitsBrokerFixture.MaxHeaderLineBytes - "h:".Length);
        await client.SendRawAsync(Frames.Send(queue, Frames.Bytes("ok"), ("h", longest)));
        Assert.Equal(longest, (await client.ReceiveMessageAsync())["h"]);

        await client.SendRawAsync(Frames.Send(queue, Frames.Bytes("no"), ("h", longest + "x")));
        await client.ExpectErrorThenCloseAsync();
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, client.CloseStatus);
        }
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Before_connect_the_frame_budget_is_smaller(Transport transport)
    {
        // 1 KiB before CONNECT here: ~800 bytes of CONNECT pass, ~1,250 do not (within the header limits either way).
        static string Padding(int headers) => string.Join("", Enumerable.Range(0, headers).Select(i => $"p{i}:{new string('z', 150)}\n"));
        await using (var fits = await Server.OpenAsync(transport))
        {
            await fits.SendRawAsync($"CONNECT\naccept-version:1.2\nhost:/\n{Padding(5)}\n\0");
            Assert.Equal(Stomp.StompCommand.Connected, (await fits.ReceiveAsync()).Command);
        }

        await using var client = await Server.OpenAsync(transport);
        await SendTolerantAsync(client, Frames.Bytes($"CONNECT\naccept-version:1.2\nhost:/\n{Padding(8)}\n\0"));

        await client.ExpectErrorThenCloseAsync();
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, client.CloseStatus);
        }
    }

    internal static async Task SendTolerantAsync(StompTestClient client, byte[] data)
    {
        // The server may refuse and close before the whole frame is written; that is the point.
        try
        {
            await client.SendRawAsync(data);
        }
        catch (Exception ex) when (ex is IOException or SocketException or WebSocketException)
        {
        }
    }
}

/// <summary>The default limits: 64 KiB before CONNECT, 1,000 headers, 8 KiB header lines, 4 MiB frames.</summary>
public sealed class DefaultFrameLimitTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    private static string Padding(int headers, int valueLength) =>
        string.Join("", Enumerable.Range(0, headers).Select(i => $"p{i:000}:{new string('z', valueLength)}\n"));

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_connect_frame_over_64_KiB_is_refused(Transport transport)
    {
        // 15 headers of ~4 KiB: no line over 8 KiB, far from 1,000 headers, but ~60 KiB in all: accepted.
        await using (var fits = await Server.OpenAsync(transport))
        {
            await fits.SendRawAsync($"CONNECT\naccept-version:1.2\nhost:/\n{Padding(15, 4000)}\n\0");
            Assert.Equal(Stomp.StompCommand.Connected, (await fits.ReceiveAsync()).Command);
        }

        // 17 such headers: ~68 KiB, over the pre-CONNECT budget.
        await using var client = await Server.OpenAsync(transport);
        await FrameLimitTests.SendTolerantAsync(client, Frames.Bytes($"CONNECT\naccept-version:1.2\nhost:/\n{Padding(17, 4000)}\n\0"));

        await client.ExpectErrorThenCloseAsync();
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, client.CloseStatus);
        }

        await Server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_frame_with_more_than_1000_headers_is_refused(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q");

        // destination + content-length + 998 = 1,000 headers: accepted.
        await client.SendRawAsync(Frames.Send(queue, Frames.Bytes("ok"), [.. Enumerable.Range(0, 998).Select(i => ($"h{i}", "v"))]));
        Assert.Equal(998, (await client.ReceiveMessageAsync()).Headers.Count(h => h.Key.StartsWith('h')));

        await client.SendRawAsync(Frames.Send(queue, Frames.Bytes("no"), [.. Enumerable.Range(0, 999).Select(i => ($"h{i}", "v"))]));
        await client.ExpectErrorThenCloseAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_header_line_over_8_KiB_is_refused(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q");

        var longest = new string('x', (8 * 1024) - "h:".Length);
        await client.SendRawAsync(Frames.Send(queue, Frames.Bytes("ok"), ("h", longest)));
        Assert.Equal(longest, (await client.ReceiveMessageAsync())["h"]);

        await client.SendRawAsync(Frames.Send(queue, Frames.Bytes("no"), ("h", longest + "x")));
        await client.ExpectErrorThenCloseAsync();
    }

    [Fact]
    public async Task A_frame_over_4_MiB_is_refused()
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(Transport.Tcp);
        await client.SubscribeAsync(queue, "q");

        var tooBig = new byte[(4 * 1024 * 1024) + 1];
        await FrameLimitTests.SendTolerantAsync(client, Frames.Send(queue, tooBig));

        await client.ExpectErrorThenCloseAsync();
        await Server.AssertStillServesOthersAsync();
    }
}
