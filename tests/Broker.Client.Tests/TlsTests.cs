using System.Security.Authentication;
using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>
/// ssl:// and wss://. The broker has no TLS listener, so a TLS-terminating proxy with a self-signed certificate sits in
/// front of its TCP and WebSocket ports; the client trusts that certificate through RemoteCertificateValidation.
/// </summary>
public sealed class TlsTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData("ssl")]
    [InlineData("tls")]
    [InlineData("stomp+ssl")]
    public async Task Stomp_over_tls_sends_and_receives(string scheme)
    {
        await using var proxy = new TlsProxy(Server.TcpPort);
        await using var client = await StompClient.ConnectAsync(Clients.Options(new Uri($"{scheme}://127.0.0.1:{proxy.Port}")) with { RemoteCertificateValidation = proxy.Validation });

        await AssertRoundTripAsync(client);
    }

    [Fact]
    public async Task Stomp_over_secure_websocket_sends_and_receives()
    {
        await using var proxy = new TlsProxy(Server.WebSocketPort, rewriteHost: true);
        await using var client = await StompClient.ConnectAsync(Clients.Options(new Uri($"wss://127.0.0.1:{proxy.Port}/ws")) with { RemoteCertificateValidation = proxy.Validation });

        await AssertRoundTripAsync(client);
    }

    [Theory]
    [InlineData("ssl")]
    [InlineData("wss")]
    public async Task An_untrusted_certificate_is_refused(string scheme)
    {
        await using var proxy = new TlsProxy(scheme == "ssl" ? Server.TcpPort : Server.WebSocketPort);
        var uri = new Uri(scheme == "ssl" ? $"ssl://127.0.0.1:{proxy.Port}" : $"wss://127.0.0.1:{proxy.Port}/ws");

        var error = await Assert.ThrowsAsync<StompConnectionException>(() => StompClient.ConnectAsync(Clients.Options(uri)));

        Assert.True(FindInChain<AuthenticationException>(error), error.ToString());
    }

    private static async Task AssertRoundTripAsync(StompClient client)
    {
        Assert.Equal(StompConnectionState.Connected, client.State);
        var queue = Unique.Queue("tls");
        await using var subscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });
        var body = new byte[100_000];
        Random.Shared.NextBytes(body);
        await client.SendAsync(queue, body, Clients.Receipted);
        var message = await subscription.NextAsync();
        Assert.Equal(body, message.Body.ToArray());
        await message.AckAsync();
    }

    private static bool FindInChain<T>(Exception? error)
        where T : Exception
    {
        for (; error is not null; error = error.InnerException)
        {
            if (error is T)
            {
                return true;
            }
        }

        return false;
    }
}
