using Broker.Backends.InMemory;
using Broker.Security;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Security;

/// <summary>
/// A broker with read/write rules per user and per role: alice (role reader), bob (role publisher), carol (no role),
/// JWTs whose role claim counts the same, and anonymous clients covered by the "*" rule only.
/// </summary>
public sealed class PermissionBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
    [
        .. Passwords.User("alice", "alice-pw", "reader"),
        .. Passwords.User("bob", "bob-pw", "publisher"),
        .. Passwords.User("carol", "carol-pw"),
        .. Tokens.HmacBroker(),
        "Broker:Security:Permissions:0:Users:0=alice",
        "Broker:Security:Permissions:0:Read:0=/topic/alice.*",
        "Broker:Security:Permissions:0:Write:0=/queue/alice-*",
        "Broker:Security:Permissions:1:Roles:0=publisher",
        "Broker:Security:Permissions:1:Write:0=/topic/news.*",
        "Broker:Security:Permissions:1:Write:1=/queue/jobs-*",
        "Broker:Security:Permissions:2:Roles:0=reader",
        "Broker:Security:Permissions:2:Read:0=/topic/news.*",
        "Broker:Security:Permissions:2:Read:1=/queue/jobs-*",
        "Broker:Security:Permissions:3:Users:0=*",
        "Broker:Security:Permissions:3:Read:0=/topic/public.*",
        "Broker:Security:Permissions:3:Write:0=/topic/public.*",
    ]);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Authorization: who may SUBSCRIBE (read) and SEND (write) where; a refusal is an ERROR and delivers nothing.</summary>
public sealed class PermissionTests(PermissionBrokerFixture broker) : IClassFixture<PermissionBrokerFixture>
{
    private BrokerServer Server => broker.Server;

    private static string News() => $"/topic/news.{Guid.NewGuid():N}";

    private static string Jobs() => $"/queue/jobs-{Guid.NewGuid():N}";

    private Task<StompTestClient> AsAsync(string user, Transport transport = Transport.Tcp) =>
        Server.ConnectWithAsync(transport, SecureClient.Login(user, user + "-pw"));

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_reader_role_subscribes_and_a_publisher_role_sends(Transport transport)
    {
        var topic = News();
        await using var alice = await AsAsync("alice", transport);
        await using var bob = await AsAsync("bob", transport);
        await alice.SubscribeAsync(topic, "news");
        await bob.SendAsync(topic, "headline", receipt: true);
        Assert.Equal("headline", (await alice.ReceiveMessageAsync()).BodyText);

        var queue = Jobs();
        await bob.SendAsync(queue, "job", receipt: true);
        await alice.SubscribeAsync(queue, "jobs");
        Assert.Equal("job", (await alice.ReceiveMessageAsync()).BodyText);
    }

    [Fact]
    public async Task A_rule_for_a_user_applies_to_that_user_only()
    {
        var topic = $"/topic/alice.{Guid.NewGuid():N}";
        await using var alice = await AsAsync("alice");
        await alice.SubscribeAsync(topic, "mine");
        await alice.SendAsync($"/queue/alice-{Guid.NewGuid():N}", "to myself", receipt: true);

        await using var bob = await AsAsync("bob");
        await bob.SendFrameAsync(StompCommand.Subscribe, [("destination", topic), ("id", "theirs")]);
        var error = await bob.ExpectErrorThenCloseAsync();
        Assert.Equal($"access refused: 'bob' may not subscribe to '{topic}'", error["message"]);
        await alice.ExpectNothingAsync(100);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_refused_subscribe_gets_an_error_naming_the_destination_and_receives_nothing(Transport transport)
    {
        var topic = News();
        await using var alice = await AsAsync("alice");
        await alice.SubscribeAsync(topic, "news");
        await using var bob = await AsAsync("bob");
        await using var carol = await AsAsync("carol", transport);

        await carol.SendFrameAsync(StompCommand.Subscribe, [("destination", topic), ("id", "sneak"), ("receipt", "sub-1")]);
        var error = await carol.ExpectErrorAsync();
        Assert.Equal($"access refused: 'carol' may not subscribe to '{topic}'", error["message"]);
        Assert.Equal("sub-1", error["receipt-id"]);
        Assert.Contains(topic, error.BodyText, StringComparison.Ordinal);

        // A message sent right after goes to the allowed subscriber only; carol's connection ends with the ERROR.
        await bob.SendAsync(topic, "for readers", receipt: true);
        Assert.Equal("for readers", (await alice.ReceiveMessageAsync()).BodyText);
        Assert.Empty(await carol.ExpectClosedAsync());
    }

    [Fact]
    public async Task A_refused_subscribe_to_a_queue_takes_nothing_from_it()
    {
        var queue = Jobs();
        await using var bob = await AsAsync("bob");
        await bob.SendAsync(queue, "queued job", receipt: true);

        await using var carol = await AsAsync("carol");
        await carol.SendFrameAsync(StompCommand.Subscribe, [("destination", queue), ("id", "sneak")]);
        var error = await carol.ExpectErrorThenCloseAsync();
        Assert.Equal($"access refused: 'carol' may not subscribe to '{queue}'", error["message"]);

        // The message is neither delivered to carol nor lost: it waits for an allowed consumer.
        Assert.Equal(1, Server.GetService<InMemoryBackend>().GetQueueDepth(Unique.QueueName(queue)));
        await using var alice = await AsAsync("alice");
        await alice.SubscribeAsync(queue, "jobs");
        Assert.Equal("queued job", (await alice.ReceiveMessageAsync()).BodyText);
    }

    [Theory]
    [InlineData(Transport.Tcp, "carol")]
    [InlineData(Transport.WebSocket, "carol")]
    [InlineData(Transport.Tcp, "alice")] // a reader may not write
    public async Task A_refused_send_gets_an_error_naming_the_destination_and_is_delivered_to_nobody(Transport transport, string sender)
    {
        var topic = News();
        await using var alice = await AsAsync("alice");
        await alice.SubscribeAsync(topic, "news");
        await using var bob = await AsAsync("bob");

        await using var refused = await AsAsync(sender, transport);
        await refused.SendFrameAsync(StompCommand.Send, [("destination", topic), ("receipt", "send-1")], "forged headline"u8.ToArray());
        var error = await refused.ExpectErrorThenCloseAsync("send-1");
        Assert.Equal($"access refused: '{sender}' may not send to '{topic}'", error["message"]);
        Assert.Contains("Nothing was published", error.BodyText, StringComparison.Ordinal);

        // The subscriber's next message is the allowed one: the refused SEND never reached it.
        await bob.SendAsync(topic, "real headline", receipt: true);
        Assert.Equal("real headline", (await alice.ReceiveMessageAsync()).BodyText);
        await alice.ExpectNothingAsync(200);
    }

    [Fact]
    public async Task A_refused_send_to_a_queue_leaves_it_empty()
    {
        var queue = Jobs();
        await using var carol = await AsAsync("carol");
        await carol.SendFrameAsync(StompCommand.Send, [("destination", queue)], "forged job"u8.ToArray());
        await carol.ExpectErrorThenCloseAsync();
        Assert.Equal(0, Server.GetService<InMemoryBackend>().GetQueueDepth(Unique.QueueName(queue)));
    }

    [Fact]
    public async Task A_refused_send_inside_a_transaction_is_refused_at_once_and_the_transaction_publishes_nothing()
    {
        var topic = News();
        await using var alice = await AsAsync("alice");
        await alice.SubscribeAsync(topic, "news");
        await using var carol = await AsAsync("carol");
        await carol.SendFrameAsync(StompCommand.Begin, [("transaction", "tx")]);
        await carol.SendFrameAsync(StompCommand.Send, [("destination", topic), ("transaction", "tx")], "in a transaction"u8.ToArray());
        await carol.SendFrameAsync(StompCommand.Commit, [("transaction", "tx")]);
        var error = await carol.ExpectErrorThenCloseAsync();
        Assert.Equal($"access refused: 'carol' may not send to '{topic}'", error["message"]);
        await alice.ExpectNothingAsync(300);
    }

    [Fact]
    public async Task The_everyone_rule_covers_anonymous_clients_and_nothing_else_does()
    {
        var topic = $"/topic/public.{Guid.NewGuid():N}";
        await using var anonymous = await Server.ConnectWithAsync(Transport.WebSocket, ("host", "/"));
        await using var carol = await AsAsync("carol");
        await anonymous.SubscribeAsync(topic, "public");
        await carol.SendAsync(topic, "hello all", receipt: true);
        Assert.Equal("hello all", (await anonymous.ReceiveMessageAsync()).BodyText);

        var news = News();
        await anonymous.SendFrameAsync(StompCommand.Subscribe, [("destination", news), ("id", "n")]);
        var error = await anonymous.ExpectErrorThenCloseAsync();
        Assert.Equal($"access refused: 'anonymous' may not subscribe to '{news}'", error["message"]);
    }

    [Fact]
    public async Task An_anonymous_client_claiming_a_users_name_gets_no_permissions_of_that_user()
    {
        // "dave" is no configured user: anonymous lets him in, but as "anonymous", not as someone with dave's rules.
        await using var dave = await Server.ConnectWithAsync(Transport.Tcp, SecureClient.Login("dave", "anything"));
        var topic = News();
        await dave.SendFrameAsync(StompCommand.Subscribe, [("destination", topic), ("id", "n")]);
        var error = await dave.ExpectErrorThenCloseAsync();
        Assert.Equal($"access refused: 'anonymous' may not subscribe to '{topic}'", error["message"]);
    }

    [Fact]
    public async Task Roles_from_a_jwt_role_claim_grant_permissions()
    {
        var topic = News();
        await using var reader = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("erin", roles: ["reader"])));
        await using var writer = await Server.ConnectWithAsync(Transport.WebSocket, ("passcode", Tokens.Create("frank", roles: ["auditor", "publisher"])));
        await reader.SubscribeAsync(topic, "news");
        await writer.SendAsync(topic, "from a token", receipt: true);
        Assert.Equal("from a token", (await reader.ReceiveMessageAsync()).BodyText);

        await using var roleless = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("erin")));
        await roleless.SendFrameAsync(StompCommand.Subscribe, [("destination", topic), ("id", "n")]);
        var error = await roleless.ExpectErrorThenCloseAsync();
        Assert.Equal($"access refused: 'erin' may not subscribe to '{topic}'", error["message"]);
    }

    [Fact]
    public async Task A_token_refreshed_without_the_role_can_no_longer_send_where_it_just_sent()
    {
        // The session remembers the last SEND destination it authorized; new credentials must forget that.
        var topic = News();
        await using var reader = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("erin", roles: ["reader"])));
        await reader.SubscribeAsync(topic, "news");
        await using var writer = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("frank", roles: ["publisher"])));
        await writer.SendAsync(topic, "allowed", receipt: true);
        Assert.Equal("allowed", (await reader.ReceiveMessageAsync()).BodyText);

        await writer.SendFrameAsync(
            StompCommand.Send,
            [("destination", "/broker/token"), ("receipt", "refreshed")],
            System.Text.Encoding.UTF8.GetBytes(Tokens.Create("frank", roles: ["auditor"])));
        await writer.ExpectReceiptAsync("refreshed");
        await writer.SendFrameAsync(StompCommand.Send, [("destination", topic)], "refused"u8.ToArray());
        var error = await writer.ExpectErrorThenCloseAsync();
        Assert.Equal($"access refused: 'frank' may not send to '{topic}'", error["message"]);
        await reader.ExpectNothingAsync(300);
    }

    [Theory]
    [InlineData("/topic/chat.*", "/topic/chat.room1", true)]
    [InlineData("/topic/chat.*", "/topic/chat.", true)]
    [InlineData("/topic/chat.*", "/topic/chat.room1.sub", false)]
    [InlineData("/topic/chat.*", "/topic/chatroom", false)]
    [InlineData("/topic/chat.*", "/topic/chat.*", true)] // an AMQP one-word wildcard stays within the pattern
    [InlineData("/topic/chat.*", "/topic/chat.#", false)] // '#' spans words the pattern does not allow
    [InlineData("/exchange/amq.topic/*", "/exchange/amq.topic/#", false)]
    [InlineData("/exchange/amq.topic/**", "/exchange/amq.topic/#", true)]
    [InlineData("/exchange/amq.topic/**", "/exchange/amq.topic/a.b", true)]
    [InlineData("/queue/orders-*", "/queue/orders-42", true)]
    [InlineData("/queue/orders-*", "/queue/orders-4.2", false)]
    [InlineData("/queue/orders-*", "/queue/other", false)]
    [InlineData("/**", "/queue/anything", true)]
    [InlineData("/queue/exact", "/queue/exact", true)]
    [InlineData("/queue/exact", "/queue/exact2", false)]
    [InlineData("/queue/exact", "/queue/exac", false)]
    public void Destination_patterns_match_as_documented(string pattern, string destination, bool matches)
    {
        Assert.Equal(matches, new DestinationPattern(pattern).IsMatch(destination));
    }
}
