using Broker.Stomp;
using Broker.Tests.Hardening;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>
/// A TCP subscriber that never reads while a producer floods a topic, with a 64 KiB outbound buffer per connection:
/// the default policy disconnects it, DropOldest keeps it; a normal subscriber gets everything either way.
/// </summary>
public sealed class SlowConsumerTests
{
    private const int BodyBytes = 4096;
    private const int Batch = 8; // 32 KiB per burst: within the 64 KiB buffer of a subscriber that does read
    private const int MaxMessages = 4000; // 16 MiB: far beyond what socket buffers and the outbound buffer hold

    [Fact]
    public async Task A_consumer_that_never_reads_is_disconnected_and_the_others_get_everything()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Outbound:MaxBufferedBytes=65536");
        var topic = Unique.Topic("flood");
        using var slow = await SubscribeSlowAsync(server, topic);
        await using var normal = await server.ConnectClientAsync();
        await normal.SubscribeAsync(topic, "normal");
        await using var producer = await server.ConnectClientAsync();

        var sent = 0;
        var closed = false;
        while (sent < MaxMessages && !closed)
        {
            sent = await SendBatchAndCheckAsync(producer, normal, topic, sent);
            closed = !await slow.TrySendAsync("\n");
        }

        Assert.True(closed || await slow.WaitForServerCloseAsync(TimeSpan.FromSeconds(10)), $"the slow consumer is still connected after {sent} messages");

        // Everything flooded reached the normal subscriber, which is still connected and working.
        await normal.ExpectNothingAsync(200);
        await normal.AssertAliveAsync();
        await server.AssertStillServesOthersAsync();
    }

    [Fact]
    public async Task With_drop_oldest_a_consumer_that_never_reads_stays_connected_and_gets_the_newest()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Outbound:MaxBufferedBytes=65536", "Broker:Outbound:SlowConsumerPolicy=DropOldest");
        var topic = Unique.Topic("flood");
        using var slow = await SubscribeSlowAsync(server, topic);
        await using var normal = await server.ConnectClientAsync();
        await normal.SubscribeAsync(topic, "normal");
        await using var producer = await server.ConnectClientAsync();

        const int total = 1600; // 6.4 MiB
        var sent = 0;
        while (sent < total)
        {
            sent = await SendBatchAndCheckAsync(producer, normal, topic, sent);
        }

        Assert.True(await slow.TrySendAsync("\n") && await slow.TrySendAsync("\n"), "the slow consumer was disconnected");

        // Now it reads: fewer messages than were sent (the oldest were dropped), in order, the last one last.
        Assert.True(await slow.TrySendAsync("SEND\ndestination:/queue/nowhere\nreceipt:probe\n\n\0"), "the send failed: the server closed the connection");
        var received = new List<int>();
        while (true)
        {
            var frame = await slow.ReadFrameAsync(TimeSpan.FromSeconds(10));
            Assert.NotNull(frame);
            if (frame.Command == StompCommand.Receipt)
            {
                Assert.Equal("probe", frame["receipt-id"]);
                break;
            }

            Assert.Equal(StompCommand.Message, frame.Command);
            received.Add(int.Parse(frame["seq"]!, System.Globalization.CultureInfo.InvariantCulture));
        }

        Assert.True(received.Count < total, $"nothing was dropped: {received.Count} of {total} arrived");
        Assert.Equal(received.Order(), received);
        Assert.Equal(total - 1, received[^1]);
        await normal.AssertAliveAsync();
    }

    // CONNECT and SUBSCRIBE on a bare socket, read the answers, then never read again.
    private static async Task<RawSocket> SubscribeSlowAsync(BrokerServer server, string topic)
    {
        var slow = await RawSocket.ConnectAsync(server.TcpPort, receiveBufferSize: 4096);
        Assert.True(await slow.TrySendAsync("CONNECT\naccept-version:1.2\nhost:/\n\n\0"), "the send failed: the server closed the connection");
        Assert.Equal(StompCommand.Connected, (await slow.ReadFrameAsync(StompTestClient.DefaultTimeout))?.Command);
        Assert.True(await slow.TrySendAsync($"SUBSCRIBE\ndestination:{topic}\nid:slow\nreceipt:sub\n\n\0"), "the send failed: the server closed the connection");
        Assert.Equal(StompCommand.Receipt, (await slow.ReadFrameAsync(StompTestClient.DefaultTimeout))?.Command);
        return slow;
    }

    // Sends a batch (the last with a receipt) and waits until the normal subscriber has all of it, in order, so it
    // never falls behind itself.
    private static async Task<int> SendBatchAndCheckAsync(StompTestClient producer, StompTestClient normal, string topic, int sent)
    {
        var body = new byte[BodyBytes];
        for (var i = 0; i < Batch; i++)
        {
            var seq = (sent + i).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await producer.SendFrameAsync(StompCommand.Send, i == Batch - 1 ? [("destination", topic), ("seq", seq), ("receipt", seq)] : [("destination", topic), ("seq", seq)], body);
        }

        await producer.ExpectReceiptAsync((sent + Batch - 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        for (var i = 0; i < Batch; i++)
        {
            var message = await normal.ReceiveMessageAsync();
            Assert.Equal((sent + i).ToString(System.Globalization.CultureInfo.InvariantCulture), message["seq"]);
            Assert.Equal(BodyBytes, message.Body.Length);
        }

        return sent + Batch;
    }
}
