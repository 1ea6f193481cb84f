using System.Net.WebSockets;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>RECEIPT for every client frame, in order, and DISCONNECT with a receipt (checklist 51, 57-58).</summary>
public sealed class ReceiptTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Every_frame_kind_gets_its_receipt(Transport transport)
    {
        var queue = Unique.Queue();
        var topic = Unique.Topic();
        await using var client = await Server.ConnectClientAsync(transport);
        await using var producer = await Server.ConnectClientAsync(transport);

        await client.SendWithReceiptAsync(StompCommand.Subscribe, ("destination", queue), ("id", "q"), ("ack", "client-individual"));
        await client.SendWithReceiptAsync(StompCommand.Subscribe, ("destination", topic), ("id", "t"));
        await client.SendWithReceiptAsync(StompCommand.Send, ("destination", Unique.Queue("elsewhere")));

        await producer.SendAsync(queue, "a", receipt: true);
        await producer.SendAsync(queue, "b", receipt: true);
        var a = await client.ReceiveMessageAsync();
        var b = await client.ReceiveMessageAsync();
        await client.SendWithReceiptAsync(StompCommand.Ack, ("id", a["ack"]!));
        await client.SendWithReceiptAsync(StompCommand.Nack, ("id", b["ack"]!), ("requeue", "false"));

        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx1"));
        await client.SendWithReceiptAsync(StompCommand.Send, ("destination", Unique.Queue("elsewhere")), ("transaction", "tx1"));
        await client.SendWithReceiptAsync(StompCommand.Commit, ("transaction", "tx1"));
        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx2"));
        await client.SendWithReceiptAsync(StompCommand.Abort, ("transaction", "tx2"));

        await client.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "q"));
        await client.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "t"));
        await client.SendWithReceiptAsync(StompCommand.Disconnect);
        Assert.Empty(await client.ExpectClosedAsync());
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Receipts_come_in_frame_order_after_the_effects_of_earlier_frames(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q");

        // One write: three SENDs to its own queue, each with a receipt.
        var batch = new List<byte>();
        for (var i = 1; i <= 3; i++)
        {
            batch.AddRange(Frames.Send(queue, Frames.Bytes($"m{i}"), ("receipt", $"r{i}")));
        }

        await client.SendRawAsync(batch.ToArray());

        for (var i = 1; i <= 3; i++)
        {
            Assert.Equal($"m{i}", (await client.ReceiveMessageAsync()).BodyText);
            await client.ExpectReceiptAsync($"r{i}");
        }
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Disconnect_with_receipt_answers_after_everything_earlier_then_closes(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q");

        // The SEND and the DISCONNECT in one write: the MESSAGE must still come first, then the RECEIPT, then the close.
        byte[] both = [.. Frames.Send(queue, Frames.Bytes("last words")), .. Frames.Bytes("DISCONNECT\nreceipt:bye\n\n\0")];
        await client.SendRawAsync(both);

        var frames = await client.ExpectClosedAsync();
        Assert.Equal(2, frames.Count);
        Assert.Equal(StompCommand.Message, frames[0].Command);
        Assert.Equal("last words", frames[0].BodyText);
        Assert.Equal(StompCommand.Receipt, frames[1].Command);
        Assert.Equal("bye", frames[1]["receipt-id"]);
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        }
    }

    [Fact]
    public async Task A_receipt_id_with_special_characters_comes_back_intact()
    {
        await using var client = await Server.ConnectClientAsync();
        const string receipt = "r:1\\2\nthree";
        await client.SendFrameAsync(StompCommand.Begin, [("transaction", "t"), ("receipt", receipt)]);
        await client.ExpectReceiptAsync(receipt);
    }
}
