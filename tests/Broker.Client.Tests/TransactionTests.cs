using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>BEGIN, SEND and ACK inside, COMMIT or ABORT.</summary>
public sealed class TransactionTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Sends_take_effect_on_commit_only(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("commit");

        await using var transaction = await client.BeginTransactionAsync();
        await transaction.SendAsync(queue, "one");
        await transaction.SendAsync(queue, "two"u8.ToArray(), Clients.Receipted);
        Assert.Equal(0, Server.QueueDepth(queue)); // receipted, but held by the transaction

        await transaction.CommitAsync();

        Assert.Equal(2, Server.QueueDepth(queue));
        await using var subscription = await client.SubscribeAsync(queue);
        Assert.Equal(["one", "two"], await subscription.NextTextsAsync(2));
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Sends_are_discarded_on_abort(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("abort");
        await using var subscription = await client.SubscribeAsync(queue);

        var transaction = await client.BeginTransactionAsync();
        await transaction.SendAsync(queue, "never");
        await transaction.AbortAsync();
        await client.SendAsync(queue, "marker", Clients.Receipted);

        Assert.Equal("marker", (await subscription.NextAsync()).BodyText);
        await transaction.DisposeAsync(); // already finished: nothing more is sent
        Assert.Equal(StompConnectionState.Connected, client.State);
    }

    [Fact]
    public async Task Disposing_an_unfinished_transaction_aborts_it()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var queue = Unique.Queue("dispose");
        string id;
        await using (var transaction = await client.BeginTransactionAsync())
        {
            id = transaction.Id;
            await transaction.SendAsync(queue, "never", Clients.Receipted);
        }

        await client.SendAsync(queue, "marker", Clients.Receipted);
        Assert.Equal(1, Server.QueueDepth(queue));

        // The broker forgot the transaction: a second BEGIN with another id works, and the old id is unknown to it.
        await using var next = await client.BeginTransactionAsync();
        Assert.NotEqual(id, next.Id);
        await next.CommitAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Acks_inside_a_transaction_apply_on_commit_and_not_on_abort(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("txack");
        var subscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });
        await client.SendAsync(queue, "a", Clients.Receipted);
        await client.SendAsync(queue, "b", Clients.Receipted);
        var a = await subscription.NextAsync();
        var b = await subscription.NextAsync();

        var aborted = await client.BeginTransactionAsync();
        await aborted.AckAsync(a);
        await aborted.AbortAsync();

        await using var committed = await client.BeginTransactionAsync();
        await committed.AckAsync(b);
        await committed.NackAsync(a, requeue: true);
        await committed.CommitAsync();

        // a was NACKed (not acked by the aborted transaction), so it comes back; b is gone for good.
        var again = await subscription.NextAsync();
        Assert.Equal("a", again.BodyText);
        Assert.True(again.Redelivered);
        await again.AckAsync();
        await subscription.DisposeAsync();
        await client.SendAsync(queue, "marker", Clients.Receipted);
        Assert.Equal(1, Server.QueueDepth(queue));
    }

    [Fact]
    public async Task A_send_in_a_transaction_unknown_to_the_broker_throws_its_error()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var transaction = await client.BeginTransactionAsync();
        await transaction.CommitAsync();

        var error = await Assert.ThrowsAsync<StompErrorException>(async () => await transaction.SendAsync(Unique.Queue(), "late", Clients.Receipted));
        Assert.Equal($"unknown transaction '{transaction.Id}'", error.Message);
    }
}
