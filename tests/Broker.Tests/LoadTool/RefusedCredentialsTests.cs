using Broker.Tests.Infrastructure;
using Broker.Tests.Security;

namespace Broker.Tests.LoadTool;

/// <summary>A broker with users and no anonymous access.</summary>
public sealed class AliceOnlyBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
        ["Broker:Security:Anonymous=false", .. Passwords.User("alice", "correct horse")]);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The load tool against a broker that refuses its credentials: the broker's ERROR is the result's error.</summary>
[Collection(LoadToolRunAloneGroup.Name)]
public sealed class RefusedCredentialsTests(AliceOnlyBrokerFixture broker) : IClassFixture<AliceOnlyBrokerFixture>
{
    private const string BadCredentials = "access refused: bad login or passcode";

    private string Url(Transport transport) => transport == Transport.Tcp
        ? $"tcp://127.0.0.1:{broker.Server.TcpPort}"
        : broker.Server.WebSocketUri.ToString();

    [Theory]
    [InlineData("p2p", Transport.Tcp)]
    [InlineData("p2p", Transport.WebSocket)]
    [InlineData("fanout", Transport.Tcp)]
    [InlineData("latency", Transport.Tcp)]
    [InlineData("conns", Transport.Tcp)]
    [InlineData("conns", Transport.WebSocket)]
    public async Task A_refused_login_fails_the_run_with_the_brokers_error_message(string scenario, Transport transport)
    {
        // The default credentials (guest/guest) are not a user of this broker.
        var run = await StompLoad.RunAsync("--scenario", scenario, "--url", Url(transport), "--connections", "5", "--subscribers", "2");

        var r = run.Result;
        Assert.False(r.Ok, $"the run should have failed: {run}");
        Assert.Equal(1, run.ExitCode);
        Assert.NotNull(r.Error);
        Assert.Contains(BadCredentials, r.Error, StringComparison.Ordinal);
        // The tool quotes the ERROR's body too, which shows the CONNECT with its passcode masked.
        Assert.DoesNotContain("passcode:guest", r.Error, StringComparison.Ordinal);
        Assert.Equal(0, r.Received);
        if (scenario == "conns")
        {
            Assert.Equal(0, r.ConnectionsOpened);
        }
    }

    [Fact]
    public async Task The_right_login_and_passcode_get_in()
    {
        var run = await StompLoad.RunAsync("--scenario", "p2p", "--url", Url(Transport.Tcp), "--login", "alice", "--passcode", "correct horse");

        StompLoad.AssertDeliveredExactlyOnce(run);
    }
}
