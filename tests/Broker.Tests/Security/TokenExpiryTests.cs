using System.Diagnostics;
using System.Text;
using Broker.Stomp;
using Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Tests.Security;

/// <summary>A jwt broker with no clock skew, so a token's expiry is exact.</summary>
public sealed class NoSkewJwtBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
        Tokens.HmacBroker("Broker:Security:Anonymous=false", "Broker:Security:Jwt:ClockSkew=00:00:00"));

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Token expiry on live connections, and in-band refresh with a SEND to /broker/token.</summary>
public sealed class TokenExpiryTests(NoSkewJwtBrokerFixture broker) : IClassFixture<NoSkewJwtBrokerFixture>
{
    private const string TokenDestination = "/broker/token";

    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task When_the_token_expires_the_connection_gets_token_expired_and_is_closed(Transport transport)
    {
        await using var other = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("bob")));
        var expires = DateTime.UtcNow.AddSeconds(2);
        var clock = Stopwatch.StartNew();
        await using var client = await Server.ConnectWithAsync(transport, ("passcode", Tokens.Create("alice", expires: expires)));
        var topic = Unique.Topic("expiry");
        await client.SubscribeAsync(topic, "t");

        var error = await client.ExpectErrorAsync();
        Assert.Equal("token expired", error["message"]);
        Assert.Contains(TokenDestination, error.BodyText, StringComparison.Ordinal);
        // exp has whole seconds: the token lapsed between 1 and 2 s after it was made, and not before.
        Assert.True(DateTime.UtcNow >= expires.AddSeconds(-1), $"closed {clock.Elapsed.TotalSeconds:0.00} s in, before the token expired");
        await client.ExpectClosedAsync();

        // The expired connection no longer receives anything; the other connection carries on.
        await other.AssertAliveAsync();
    }

    [Fact]
    public async Task The_connection_is_closed_at_expiry_even_when_the_timer_fires_early()
    {
        await using var server = await BrokerServer.StartAsync(
            services => services.AddSingleton<TimeProvider>(new EarlyTimers(TimeSpan.FromMilliseconds(30))),
            Tokens.HmacBroker("Broker:Security:Anonymous=false", "Broker:Security:Jwt:ClockSkew=00:00:00"));
        var expires = DateTime.UtcNow.AddSeconds(2);
        await using var client = await server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("alice", expires: expires)));

        var error = await client.ExpectErrorAsync();
        Assert.Equal("token expired", error["message"]);
        Assert.True(DateTime.UtcNow >= expires.AddSeconds(-1), "closed before the token expired");
        await client.ExpectClosedAsync();
    }

    [Fact]
    public async Task A_refresh_before_expiry_with_a_token_header_is_receipted_and_keeps_the_connection_past_the_first_expiry()
    {
        var firstExpiry = DateTime.UtcNow.AddSeconds(2);
        await using var client = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("alice", expires: firstExpiry)));

        var secondExpiry = DateTime.UtcNow.AddSeconds(4);
        await client.SendWithReceiptAsync(StompCommand.Send, ("destination", TokenDestination), ("token", Tokens.Create("alice", expires: secondExpiry)));

        // Past the first expiry: still connected and working.
        var pastFirst = firstExpiry.AddMilliseconds(300) - DateTime.UtcNow;
        await client.ExpectNothingAsync((int)Math.Max(pastFirst.TotalMilliseconds, 0));
        await client.AssertAliveAsync();

        // The refreshed token expires in its turn.
        var error = await client.ExpectErrorAsync();
        Assert.Equal("token expired", error["message"]);
        Assert.True(DateTime.UtcNow >= secondExpiry.AddSeconds(-1), "closed before the refreshed token expired");
        await client.ExpectClosedAsync();
    }

    [Fact]
    public async Task A_refresh_with_the_token_as_the_body_over_websocket_is_receipted_and_keeps_the_connection()
    {
        var firstExpiry = DateTime.UtcNow.AddSeconds(2);
        await using var client = await Server.ConnectWithAsync(Transport.WebSocket, ("passcode", Tokens.Create("alice", expires: firstExpiry)));
        var receipt = Unique.Id("refresh");
        await client.SendFrameAsync(
            StompCommand.Send,
            [("destination", TokenDestination), ("receipt", receipt), ("content-type", "text/plain")],
            Encoding.UTF8.GetBytes(Tokens.Create("alice", lifetime: TimeSpan.FromMinutes(5)) + "\n"));
        await client.ExpectReceiptAsync(receipt);

        var pastFirst = firstExpiry.AddMilliseconds(300) - DateTime.UtcNow;
        await client.ExpectNothingAsync((int)Math.Max(pastFirst.TotalMilliseconds, 0));
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task A_refresh_message_is_not_published_to_anyone()
    {
        // /broker/token is not a destination: a would-be subscriber cannot even name it, and the token is not echoed.
        await using var client = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("alice")));
        await client.SendWithReceiptAsync(StompCommand.Send, ("destination", TokenDestination), ("token", Tokens.Create("alice")));
        await client.ExpectNothingAsync(200);

        await using var snoop = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("bob")));
        await snoop.SendFrameAsync(StompCommand.Subscribe, [("destination", TokenDestination), ("id", "s")]);
        var error = await snoop.ExpectErrorThenCloseAsync();
        Assert.Contains(TokenDestination, error["message"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("another user", "token refused: it names a different user than the connection's")]
    [InlineData("wrong issuer", "access refused: invalid token")]
    [InlineData("garbage", "access refused: invalid token")]
    [InlineData("already expired", "token expired")]
    public async Task A_refused_refresh_gets_an_error_with_its_receipt_id_and_the_connection_is_closed(string kind, string message)
    {
        var token = kind switch
        {
            "another user" => Tokens.Create("mallory"),
            "wrong issuer" => Tokens.Create("alice", issuer: "https://evil.test"),
            "already expired" => Tokens.Create("alice", expires: DateTime.UtcNow.AddMinutes(-1)),
            _ => "garbage",
        };
        await using var other = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("bob")));
        await using var client = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("alice")));
        await client.SendFrameAsync(StompCommand.Send, [("destination", TokenDestination), ("token", token), ("receipt", "refresh-1")]);

        var error = await client.ExpectErrorThenCloseAsync("refresh-1");
        Assert.True(message == error["message"], $"{kind}: {error}");
        Assert.False(error.BodyText.Contains(token, StringComparison.Ordinal), $"{kind}: the ERROR echoes the token");
        await other.AssertAliveAsync();
    }

    [Fact]
    public async Task A_refresh_without_a_token_is_refused()
    {
        await using var client = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("alice")));
        await client.SendFrameAsync(StompCommand.Send, [("destination", TokenDestination), ("receipt", "r")]);
        var error = await client.ExpectErrorThenCloseAsync("r");
        Assert.Equal("no token", error["message"]);
    }
}
