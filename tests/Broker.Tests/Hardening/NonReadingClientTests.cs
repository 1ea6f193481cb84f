using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>
/// Clients that do not read what the broker sends: several subscribers to a busy topic at once, and a client that asks
/// for receipts it never reads. Both floods run alone (see <see cref="RunAloneGroup"/>).
/// </summary>
[Collection(RunAloneGroup.Name)]
public sealed class NonReadingClientTests
{
    private const int BodyBytes = 4096;
    private const int Batch = 8;
    private const int MaxMessages = 6000;

    [Fact]
    public async Task Several_subscribers_that_never_read_are_disconnected_and_the_others_get_everything()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Outbound:MaxBufferedBytes=65536");
        using var metrics = new MetricsRecorder(server);
        var topic = Unique.Topic("flood");
        using var slowTcp1 = await SubscribeSlowTcpAsync(server, topic);
        using var slowTcp2 = await SubscribeSlowTcpAsync(server, topic);
        using var slowWs = await SubscribeSlowWebSocketAsync(server, topic);
        await using var normalTcp = await server.ConnectClientAsync(Transport.Tcp);
        await normalTcp.SubscribeAsync(topic, "normal-tcp");
        await using var normalWs = await server.ConnectClientAsync(Transport.WebSocket);
        await normalWs.SubscribeAsync(topic, "normal-ws");
        await using var producer = await server.ConnectClientAsync();

        var open = new List<(string Name, Func<Task<bool>> Probe)> { ("tcp 1", () => slowTcp1.TrySendAsync("\n")), ("tcp 2", () => slowTcp2.TrySendAsync("\n")), ("ws", () => ProbeAsync(slowWs)) };
        var sent = 0;
        while (sent < MaxMessages && open.Count > 0)
        {
            sent = await SendBatchAndCheckAsync(producer, [normalTcp, normalWs], topic, sent);
            for (var i = open.Count - 1; i >= 0; i--)
            {
                if (!await open[i].Probe())
                {
                    open.RemoveAt(i);
                }
            }
        }

        // Any still open must be closing: the broker gives a non-reading peer 5 s to take its ERROR, then cuts it.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (open.Count > 0 && DateTime.UtcNow < deadline)
        {
            for (var i = open.Count - 1; i >= 0; i--)
            {
                if (!await open[i].Probe())
                {
                    open.RemoveAt(i);
                }
            }

            await Task.Delay(50);
        }

        Assert.True(
            open.Count == 0,
            $"{string.Join(", ", open.Select(o => o.Name))} of the 3 subscribers that never read still connected after {sent} messages; "
            + $"the broker has {server.GetService<Broker.Sessions.SessionRegistry>().Count} sessions (3 expected), slow consumers {metrics.Get("stompbroker.slow_consumers")}");
        Assert.Equal(3, metrics.Get("stompbroker.slow_consumers"));
        await normalTcp.ExpectNothingAsync(200);
        await normalWs.ExpectNothingAsync(200);
        await normalTcp.AssertAliveAsync();
        await normalWs.AssertAliveAsync();
        await server.WaitForConnectionCountAsync(3);
    }

    [Fact]
    public async Task A_client_that_asks_for_receipts_and_never_reads_them_is_disconnected()
    {
        // Receipts are not messages, so no slow-consumer policy drops them; unread, they must still not pile up
        // without bound in the broker.
        await using var server = await BrokerServer.StartAsync("Broker:Outbound:MaxBufferedBytes=65536");
        using var spammer = await RawSocket.ConnectAsync(server.TcpPort, receiveBufferSize: 4096);
        Assert.True(await spammer.TrySendAsync("CONNECT\naccept-version:1.2\nhost:/\n\n\0"));
        Assert.Equal(StompCommand.Connected, (await spammer.ReadFrameAsync(StompTestClient.DefaultTimeout))?.Command);

        var topic = Unique.Topic("nobody");
        var chunk = new StringBuilder();
        for (var i = 0; i < 1000; i++)
        {
            chunk.Append("SEND\ndestination:").Append(topic).Append("\nreceipt:receipt-").Append(i.ToString("D6", CultureInfo.InvariantCulture)).Append("\n\n\0");
        }

        var bytes = Encoding.UTF8.GetBytes(chunk.ToString());
        var written = 0L;
        using (var sending = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            // 400 chunks: 400,000 receipts, some 40 MB of them unread if nothing stops it.
            for (var i = 0; i < 400 && await spammer.TrySendAsync(bytes, sending.Token); i++)
            {
                written += bytes.Length;
            }
        }

        Assert.True(await spammer.WaitForServerCloseAsync(TimeSpan.FromSeconds(20)), $"still connected after {written} bytes of receipted frames");
        await server.AssertStillServesOthersAsync();
        await server.WaitForNoConnectionsAsync();
    }

    // CONNECT and SUBSCRIBE on a bare socket with a 4 KiB receive buffer, read the answers, then never read again.
    private static async Task<RawSocket> SubscribeSlowTcpAsync(BrokerServer server, string topic)
    {
        var slow = await RawSocket.ConnectAsync(server.TcpPort, receiveBufferSize: 4096);
        Assert.True(await slow.TrySendAsync("CONNECT\naccept-version:1.2\nhost:/\n\n\0"), "the send failed: the server closed the connection");
        Assert.Equal(StompCommand.Connected, (await slow.ReadFrameAsync(StompTestClient.DefaultTimeout))?.Command);
        Assert.True(await slow.TrySendAsync($"SUBSCRIBE\ndestination:{topic}\nid:slow\nreceipt:sub\n\n\0"), "the send failed: the server closed the connection");
        Assert.Equal(StompCommand.Receipt, (await slow.ReadFrameAsync(StompTestClient.DefaultTimeout))?.Command);
        return slow;
    }

    private static async Task<ClientWebSocket> SubscribeSlowWebSocketAsync(BrokerServer server, string topic)
    {
        var (socket, status) = await WebSockets.TryOpenAsync(server.WebSocketUri, receiveBufferSize: 4096);
        Assert.Equal(HttpStatusCode.SwitchingProtocols, status);
        await WebSockets.SendAsync(socket, Encoding.UTF8.GetBytes("CONNECT\naccept-version:1.2\nhost:/\n\n\0"));
        Assert.StartsWith("CONNECTED", Encoding.UTF8.GetString((await WebSockets.ReceiveMessageAsync(socket, StompTestClient.DefaultTimeout))!), StringComparison.Ordinal);
        await WebSockets.SendAsync(socket, Encoding.UTF8.GetBytes($"SUBSCRIBE\ndestination:{topic}\nid:slow\nreceipt:sub\n\n\0"));
        Assert.StartsWith("RECEIPT", Encoding.UTF8.GetString((await WebSockets.ReceiveMessageAsync(socket, StompTestClient.DefaultTimeout))!), StringComparison.Ordinal);
        return socket;
    }

    // A heart-beat EOL: false once the broker has cut the connection.
    private static async Task<bool> ProbeAsync(ClientWebSocket socket)
    {
        // No timeout: cancelling a WebSocket send aborts the socket. The broker keeps reading, so a tiny send never blocks.
        try
        {
            await socket.SendAsync("\n"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            return true;
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException)
        {
            return false;
        }
    }

    // Sends a batch (the last with a receipt) and waits until every normal subscriber has all of it, in order.
    private static async Task<int> SendBatchAndCheckAsync(StompTestClient producer, StompTestClient[] normals, string topic, int sent)
    {
        var body = new byte[BodyBytes];
        for (var i = 0; i < Batch; i++)
        {
            var seq = (sent + i).ToString(CultureInfo.InvariantCulture);
            await producer.SendFrameAsync(StompCommand.Send, i == Batch - 1 ? [("destination", topic), ("seq", seq), ("receipt", seq)] : [("destination", topic), ("seq", seq)], body);
        }

        await producer.ExpectReceiptAsync((sent + Batch - 1).ToString(CultureInfo.InvariantCulture));
        foreach (var normal in normals)
        {
            for (var i = 0; i < Batch; i++)
            {
                var message = await normal.ReceiveMessageAsync();
                Assert.Equal((sent + i).ToString(CultureInfo.InvariantCulture), message["seq"]);
                Assert.Equal(BodyBytes, message.Body.Length);
            }
        }

        return sent + Batch;
    }
}
