using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>BEGIN, COMMIT, ABORT; SEND, ACK and NACK inside transactions (checklist 46, 48-50).</summary>
public sealed class TransactionTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Sends_in_a_transaction_take_effect_on_commit(Transport transport)
    {
        var queue = Unique.Queue();
        var topic = Unique.Topic();
        await using var consumer = await Server.ConnectClientAsync(transport);
        await using var producer = await Server.ConnectClientAsync(transport);
        await consumer.SubscribeAsync(queue, "q");
        await consumer.SubscribeAsync(topic, "t");

        await producer.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx1"));
        await producer.SendAsync(queue, "one", receipt: true, ("transaction", "tx1"));
        await producer.SendAsync(topic, "two", receipt: true, ("transaction", "tx1"));
        await producer.SendAsync(queue, "three", receipt: true, ("transaction", "tx1"));
        await consumer.ExpectNothingAsync();

        await producer.SendWithReceiptAsync(StompCommand.Commit, ("transaction", "tx1"));
        var messages = await consumer.ReceiveMessagesAsync(3);
        Assert.Equal(["one", "two", "three"], messages.Select(m => m.BodyText));
        Assert.All(messages, m => Assert.Null(m["transaction"])); // the SEND's transaction header is not passed on
        Assert.All(messages, m => Assert.Null(m["receipt"]));
        await consumer.ExpectNothingAsync(200);

        // The transaction is over: the id can be begun again, and committing the old one is an error.
        await producer.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx1"));
        await producer.SendWithReceiptAsync(StompCommand.Abort, ("transaction", "tx1"));
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Abort_discards_the_sends(Transport transport)
    {
        var queue = Unique.Queue();
        await using var consumer = await Server.ConnectClientAsync(transport);
        await using var producer = await Server.ConnectClientAsync(transport);
        await consumer.SubscribeAsync(queue, "q");

        await producer.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx"));
        await producer.SendAsync(queue, "discarded", receipt: true, ("transaction", "tx"));
        await producer.SendAsync(queue, "outside", receipt: true);
        await producer.SendWithReceiptAsync(StompCommand.Abort, ("transaction", "tx"));

        Assert.Equal("outside", (await consumer.ReceiveMessageAsync()).BodyText);
        await consumer.ExpectNothingAsync();

        await producer.SendFrameAsync(StompCommand.Commit, [("transaction", "tx"), ("receipt", "gone")]);
        await producer.ExpectErrorThenCloseAsync("gone");
    }

    [Theory]
    [InlineData(Transport.Tcp, "disconnect")]
    [InlineData(Transport.Tcp, "drop")]
    [InlineData(Transport.WebSocket, "disconnect")]
    [InlineData(Transport.WebSocket, "drop")]
    public async Task Disconnect_or_a_dropped_connection_discards_uncommitted_sends(Transport transport, string how)
    {
        var queue = Unique.Queue();
        await using var producer = await Server.ConnectClientAsync(transport);
        await producer.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx"));
        await producer.SendAsync(queue, "never", receipt: true, ("transaction", "tx"));
        if (how == "disconnect")
        {
            await producer.SendWithReceiptAsync(StompCommand.Disconnect);
            await producer.ExpectClosedAsync();
        }
        else
        {
            await producer.DisposeAsync();
        }

        await using var consumer = await Server.ConnectClientAsync(transport);
        await consumer.SubscribeAsync(queue, "q");
        await consumer.ExpectNothingAsync(500);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task An_ack_in_a_transaction_takes_effect_on_commit(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q", "client-individual", ("prefetch-count", "1"));
        await client.SendAsync(queue, "m1");
        await client.SendAsync(queue, "m2"); // held back by prefetch 1 (the BEGIN's receipt below proves it arrived)
        var m1 = await client.ReceiveMessageAsync();

        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx"));
        await client.AckAsync(m1, receipt: true, ("transaction", "tx"));
        await client.ExpectNothingAsync(); // m1 is still unacknowledged, so prefetch 1 holds m2 back

        await client.SendFrameAsync(StompCommand.Commit, [("transaction", "tx")]);
        Assert.Equal("m2", (await client.ReceiveMessageAsync()).BodyText);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task An_ack_in_an_aborted_transaction_is_discarded(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q", "client-individual", ("prefetch-count", "1"));
        await client.SendAsync(queue, "m1");
        await client.SendAsync(queue, "m2"); // held back by prefetch 1 (the BEGIN's receipt below proves it arrived)
        var m1 = await client.ReceiveMessageAsync();

        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx"));
        await client.AckAsync(m1, receipt: true, ("transaction", "tx"));
        await client.SendWithReceiptAsync(StompCommand.Abort, ("transaction", "tx"));
        await client.ExpectNothingAsync();

        // m1 is still unacknowledged: acking it outside the transaction works and lets m2 through.
        await client.AckAsync(m1, receipt: false);
        Assert.Equal("m2", (await client.ReceiveMessageAsync()).BodyText);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_nack_in_a_transaction_takes_effect_on_commit(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q", "client-individual");
        await client.SendAsync(queue, "m1");
        var m1 = await client.ReceiveMessageAsync();

        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx"));
        await client.NackAsync(m1, receipt: true, ("transaction", "tx"));
        await client.ExpectNothingAsync();

        await client.SendFrameAsync(StompCommand.Commit, [("transaction", "tx")]);
        var again = await client.ReceiveMessageAsync();
        Assert.Equal("m1", again.BodyText);
        Assert.Equal("true", again["redelivered"]);
    }

    [Fact]
    public async Task Transactions_are_per_connection()
    {
        var queue = Unique.Queue();
        await using var consumer = await Server.ConnectClientAsync();
        await using var a = await Server.ConnectClientAsync();
        await using var b = await Server.ConnectClientAsync(Transport.WebSocket);
        await consumer.SubscribeAsync(queue, "q");

        await a.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "same"));
        await b.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "same"));
        await a.SendAsync(queue, "from a", receipt: true, ("transaction", "same"));
        await b.SendAsync(queue, "from b", receipt: true, ("transaction", "same"));
        await b.SendWithReceiptAsync(StompCommand.Abort, ("transaction", "same"));
        await a.SendWithReceiptAsync(StompCommand.Commit, ("transaction", "same"));

        Assert.Equal("from a", (await consumer.ReceiveMessageAsync()).BodyText);
        await consumer.ExpectNothingAsync();
    }
}
