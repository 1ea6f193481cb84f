using System.Net;
using System.Net.WebSockets;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>
/// Connection limits, total and per remote address: an over-limit TCP client gets ERROR then close, an over-limit
/// WebSocket upgrade gets HTTP 503; connections already open are unaffected, and closing some makes room again.
/// </summary>
public sealed class ConnectionLimitTests
{
    private static readonly IPAddress OtherLoopback = IPAddress.Parse("127.0.0.2");

    [Fact]
    public async Task Over_the_total_limit_TCP_gets_an_error_and_WebSocket_gets_503_and_closing_one_makes_room()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:MaxConnections=3");
        using var metrics = new MetricsRecorder(server);
        await using var first = await server.ConnectClientAsync(Transport.Tcp);
        await using var second = await server.ConnectClientAsync(Transport.WebSocket);
        await using var third = await server.ConnectClientAsync(Transport.Tcp);

        // A real client sends CONNECT at once; it still learns why it was refused.
        await using (var refused = await server.OpenAsync(Transport.Tcp))
        {
            await TrySendConnectAsync(refused);
            var error = await refused.ExpectErrorThenCloseAsync();
            Assert.StartsWith("too many connections", error["message"], StringComparison.Ordinal);
            Assert.Contains("at most 3", error.BodyText, StringComparison.Ordinal);
        }

        // A client that sends nothing gets the same.
        using (var silent = await RawSocket.ConnectAsync(server.TcpPort))
        {
            var end = await silent.ReadUntilClosedAsync(StompTestClient.DefaultTimeout);
            Assert.NotNull(end);
            Assert.Equal(StompCommand.Error, Assert.Single(end.Frames).Command);
        }

        var (socket, status) = await WebSockets.TryOpenAsync(server.WebSocketUri);
        using (socket)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
            Assert.NotEqual(WebSocketState.Open, socket.State);
        }

        Assert.Equal(3, metrics.Get("stompbroker.connections.refused", "reason", "limit"));

        // The three open connections never noticed.
        await first.AssertAliveAsync();
        await second.AssertAliveAsync();
        await third.AssertAliveAsync();

        // Closing two makes room for two new ones (AssertStillServesOthersAsync opens one of each transport).
        await first.DisposeAsync();
        await second.DisposeAsync();
        await server.WaitForConnectionCountAsync(1);
        await server.AssertStillServesOthersAsync();
        await third.AssertAliveAsync();
    }

    [Fact]
    public async Task Over_the_per_address_limit_that_address_is_refused_and_another_address_is_not()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:MaxConnectionsPerAddress=2", "Broker:Limits:MaxConnections=0");
        using var metrics = new MetricsRecorder(server);
        await using var first = await server.ConnectClientAsync(Transport.Tcp);
        await using var second = await server.ConnectClientAsync(Transport.WebSocket);

        await using (var refused = await server.OpenAsync(Transport.Tcp))
        {
            await TrySendConnectAsync(refused);
            var error = await refused.ExpectErrorThenCloseAsync();
            Assert.Equal("too many connections from 127.0.0.1: at most 2 per address", error["message"]);
        }

        var (refusedSocket, refusedStatus) = await WebSockets.TryOpenAsync(server.WebSocketUri);
        refusedSocket.Dispose();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refusedStatus);

        // 127.0.0.2 has its own budget of two, over both transports.
        using var tcpOther = await RawSocket.ConnectAsync(server.TcpPort, OtherLoopback);
        Assert.True(await tcpOther.TrySendAsync("CONNECT\naccept-version:1.2\nhost:/\n\n\0"));
        Assert.Equal(StompCommand.Connected, (await tcpOther.ReadFrameAsync(StompTestClient.DefaultTimeout))?.Command);
        var (wsOther, wsOtherStatus) = await WebSockets.TryOpenAsync(server.WebSocketUri, OtherLoopback);
        using (wsOther)
        {
            Assert.Equal(HttpStatusCode.SwitchingProtocols, wsOtherStatus);
            await WebSockets.SendAsync(wsOther, "CONNECT\naccept-version:1.2\nhost:/\n\n\0"u8.ToArray());
            var connected = await WebSockets.ReceiveMessageAsync(wsOther, StompTestClient.DefaultTimeout);
            Assert.StartsWith("CONNECTED\n", System.Text.Encoding.UTF8.GetString(connected!), StringComparison.Ordinal);

            using var thirdOther = await RawSocket.ConnectAsync(server.TcpPort, OtherLoopback);
            var end = await thirdOther.ReadUntilClosedAsync(StompTestClient.DefaultTimeout);
            Assert.StartsWith("too many connections from 127.0.0.2", Assert.Single(end!.Frames)["message"], StringComparison.Ordinal);
        }

        Assert.Equal(3, metrics.Get("stompbroker.connections.refused", "reason", "limit"));
        await first.AssertAliveAsync();
        await second.AssertAliveAsync();

        // Room again for 127.0.0.1 once its connections close.
        await first.DisposeAsync();
        await second.DisposeAsync();
        await server.WaitForConnectionCountAsync(1); // tcpOther
        await server.AssertStillServesOthersAsync();
    }

    private static async Task TrySendConnectAsync(StompTestClient client)
    {
        try
        {
            await client.SendFrameAsync(StompCommand.Connect, [("accept-version", "1.2"), ("host", "/")]);
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
        {
            // Refused before the CONNECT went out: fine, the ERROR is still there to read.
        }
    }
}
