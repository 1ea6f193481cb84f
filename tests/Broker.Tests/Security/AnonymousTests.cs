using Broker.Configuration;
using Broker.Security;
using Broker.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Broker.Tests.Security;

/// <summary>The anonymous provider: on by default only on loopback, off on request, and never by default beyond it.</summary>
public sealed class AnonymousTests
{
    private const string NoProvider = "No authentication provider";

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_loopback_broker_lets_clients_in_without_credentials_by_default(Transport transport)
    {
        await using var server = await BrokerServer.StartAsync();
        Assert.True(server.GetService<Authenticator>().AnonymousAllowed);

        await using var client = await server.ConnectWithAsync(transport, ("host", "/"));
        await client.AssertAliveAsync();
        // A login that names no configured user (stomp.py and stomp.js send guest/guest) is anonymous too.
        await using var guest = await server.ConnectWithAsync(transport, SecureClient.Login("guest", "guest"));
        await guest.AssertAliveAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task With_anonymous_off_a_connect_without_credentials_is_refused_and_others_are_unaffected(Transport transport)
    {
        await using var server = await BrokerServer.StartAsync(
            ["Broker:Security:Anonymous=false", .. Passwords.User("alice", "alice-pw")]);
        await using var alice = await server.ConnectWithAsync(Transport.Tcp, SecureClient.Login("alice", "alice-pw"));
        var queue = Unique.Queue("anon");
        await alice.SubscribeAsync(queue, "a");

        var error = await server.ConnectRefusedAsync(
            transport, "access refused: credentials required (login and passcode, or a bearer token)", ("host", "/"));
        Assert.Contains("CONNECT was refused", error.BodyText, StringComparison.Ordinal);

        // Nothing of the refused connection reached anyone; the authenticated client carries on.
        await alice.SendAsync(queue, "after the refusal");
        Assert.Equal("after the refusal", (await alice.ReceiveMessageAsync()).BodyText);
        await alice.AssertAliveAsync();
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("*")]
    public async Task A_broker_beyond_loopback_with_no_provider_fails_validation_and_does_not_start(string bindAddress)
    {
        // Program.cs fails at builder.Build(): Kestrel's endpoints are set up then, which validates the options. The
        // test never starts the app, so even if validation let it through, nothing would listen beyond loopback.
        WebApplication? app = null;
        var failure = Record.Exception(() => app = BrokerApp.Build($"Broker:BindAddress={bindAddress}"));
        if (app is not null)
        {
            await app.DisposeAsync();
        }

        var validation = Assert.IsType<OptionsValidationException>(failure);
        Assert.Contains(NoProvider, validation.Message, StringComparison.Ordinal);
        Assert.Contains("Broker:Security:Anonymous=true", validation.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Broker:Security:Anonymous=true")]
    [InlineData("Broker:Security:Jwt:Enabled=true", "Broker:Security:Jwt:SymmetricKeys:0=c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=")]
    public async Task A_broker_beyond_loopback_passes_validation_once_a_provider_is_configured(params string[] settings)
    {
        // Built and validated, never started: nothing listens on 0.0.0.0.
        await using var app = BrokerApp.Build(["Broker:BindAddress=0.0.0.0", .. settings]);
        var options = app.Services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        Assert.Equal("0.0.0.0", options.BindAddress);
        Assert.Equal(settings[0] == "Broker:Security:Anonymous=true", new Authenticator(Options.Create(options)).AnonymousAllowed);
    }

    [Fact]
    public async Task A_loopback_broker_with_anonymous_off_and_no_other_provider_does_not_start()
    {
        var failure = await BrokerApp.StartRefusedAsync("Broker:Security:Anonymous=false");
        Assert.Contains(NoProvider, failure.Message, StringComparison.Ordinal);
    }
}
