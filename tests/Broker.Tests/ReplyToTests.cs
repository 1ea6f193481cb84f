using Broker.Backends.InMemory;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>Request/reply with reply-to: /temp-queue/NAME, as RabbitMQ's STOMP plugin does it.</summary>
public sealed class ReplyToTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp, Transport.Tcp)]
    [InlineData(Transport.WebSocket, Transport.Tcp)]
    [InlineData(Transport.Tcp, Transport.WebSocket)]
    [InlineData(Transport.WebSocket, Transport.WebSocket)]
    public async Task A_reply_to_a_temp_queue_reaches_the_requester(Transport requesterTransport, Transport responderTransport)
    {
        var requests = Unique.Queue("requests");
        await using var requester = await Server.ConnectClientAsync(requesterTransport);
        await using var responder = await Server.ConnectClientAsync(responderTransport);
        await responder.SubscribeAsync(requests, "requests");

        await requester.SendAsync(requests, "what time is it?", receipt: true, ("reply-to", "/temp-queue/replies"), ("correlation-id", "c1"));
        var request = await responder.ReceiveMessageAsync();
        Assert.Equal("what time is it?", request.BodyText);
        Assert.Equal("c1", request["correlation-id"]);
        var replyTo = request["reply-to"];
        Assert.NotNull(replyTo);
        Assert.StartsWith("/reply-queue/", replyTo, StringComparison.Ordinal);

        await responder.SendAsync(replyTo, "teatime", receipt: true, ("correlation-id", "c1"));
        var reply = await requester.ReceiveMessageAsync();
        Assert.Equal("teatime", reply.BodyText);
        Assert.Equal("/temp-queue/replies", reply["subscription"]);
        Assert.Equal("c1", reply["correlation-id"]);

        // A second request reuses the same temp queue.
        await requester.SendAsync(requests, "again?", receipt: true, ("reply-to", "/temp-queue/replies"));
        var second = await responder.ReceiveMessageAsync();
        Assert.Equal(replyTo, second["reply-to"]);
    }

    [Fact]
    public async Task Two_requesters_with_the_same_temp_name_get_their_own_replies()
    {
        var requests = Unique.Queue("requests");
        await using var alice = await Server.ConnectClientAsync();
        await using var bob = await Server.ConnectClientAsync(Transport.WebSocket);
        await using var responder = await Server.ConnectClientAsync();
        await responder.SubscribeAsync(requests, "requests");

        await alice.SendAsync(requests, "alice", receipt: true, ("reply-to", "/temp-queue/r"));
        await bob.SendAsync(requests, "bob", receipt: true, ("reply-to", "/temp-queue/r"));
        var fromAlice = await responder.ReceiveMessageAsync();
        var fromBob = await responder.ReceiveMessageAsync();
        Assert.NotEqual(fromAlice["reply-to"], fromBob["reply-to"]);

        await responder.SendAsync(fromBob["reply-to"]!, "for bob", receipt: true);
        await responder.SendAsync(fromAlice["reply-to"]!, "for alice", receipt: true);
        Assert.Equal("for alice", (await alice.ReceiveMessageAsync()).BodyText);
        Assert.Equal("for bob", (await bob.ReceiveMessageAsync()).BodyText);
        await alice.ExpectNothingAsync(200);
        await bob.ExpectNothingAsync(100);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task The_temp_queue_is_gone_once_the_requester_disconnects(Transport transport)
    {
        var requests = Unique.Queue("requests");
        await using var responder = await Server.ConnectClientAsync(transport);
        await responder.SubscribeAsync(requests, "requests");
        string replyTo;
        await using (var requester = await Server.ConnectClientAsync(transport))
        {
            await requester.SendAsync(requests, "hello", receipt: true, ("reply-to", "/temp-queue/replies"));
            replyTo = (await responder.ReceiveMessageAsync())["reply-to"]!;
            await requester.SendWithReceiptAsync(StompCommand.Disconnect);
            await requester.ExpectClosedAsync();
        }

        // A fresh requester with the same temp name.
        await using var fresh = await Server.ConnectClientAsync(transport);
        await fresh.SendAsync(requests, "hello again", receipt: true, ("reply-to", "/temp-queue/replies"));
        Assert.NotEqual(replyTo, (await responder.ReceiveMessageAsync())["reply-to"]);

        var backend = Server.GetService<InMemoryBackend>();
        var droppedBefore = backend.DroppedCount;
        await responder.SendAsync(replyTo, "too late", receipt: true);

        await fresh.ExpectNothingAsync();
        Assert.Equal(droppedBefore + 1, backend.DroppedCount);
        await responder.AssertAliveAsync(); // replying into the void is not an error
    }

    [Fact]
    public async Task Subscribing_to_a_temp_or_reply_queue_directly_is_refused()
    {
        await using var client = await Server.ConnectClientAsync();
        await client.SendFrameAsync(StompCommand.Subscribe, [("destination", "/temp-queue/x"), ("id", "1"), ("receipt", "r")]);
        await client.ExpectErrorThenCloseAsync("r");

        await using var other = await Server.ConnectClientAsync(Transport.WebSocket);
        await other.SendFrameAsync(StompCommand.Subscribe, [("destination", "/reply-queue/x"), ("id", "1"), ("receipt", "r")]);
        await other.ExpectErrorThenCloseAsync("r");
    }
}
