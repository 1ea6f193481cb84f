using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Broker.Client;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Security;

/// <summary>
/// A broker with TLS on both listeners from a self-signed PEM certificate and key — the working example of
/// Broker:Tcp:Tls:* and Broker:WebSocket:Tls:*. The jwt provider is on too (anonymous stays on, as on any loopback broker).
/// </summary>
public sealed class TlsBrokerFixture : IAsyncLifetime
{
    public TestCertificate Certificate { get; } = TestCertificate.Create();

    public BrokerServer Server { get; private set; } = null!;

    public Uri SecureWebSocketUri => new($"wss://127.0.0.1:{Server.WebSocketPort}/ws");

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(Tokens.HmacBroker(
        $"Broker:Tcp:Tls:CertificatePath={Certificate.CertificatePath}",
        $"Broker:Tcp:Tls:KeyPath={Certificate.KeyPath}",
        $"Broker:WebSocket:Tls:CertificatePath={Certificate.CertificatePath}",
        $"Broker:WebSocket:Tls:KeyPath={Certificate.KeyPath}"));

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Certificate.Dispose();
    }
}

/// <summary>STOMP over TLS (ssl://) and secure WebSocket (wss://), with a raw peer, the .NET client and stomp.js.</summary>
public sealed class TlsTests(TlsBrokerFixture broker) : IClassFixture<TlsBrokerFixture>
{
    private BrokerServer Server => broker.Server;

    private TestCertificate Certificate => broker.Certificate;

    [Fact]
    public async Task A_raw_tls_peer_sees_the_configured_certificate_and_speaks_stomp()
    {
        await using var client = await ConnectTlsAsync(Server.TcpPort);
        await client.ConnectAsync();
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task The_dotnet_client_works_over_ssl_with_a_token()
    {
        await using var client = await StompClient.ConnectAsync(new StompClientOptions
        {
            Uri = new Uri($"ssl://127.0.0.1:{Server.TcpPort}"),
            Token = Tokens.Create("alice"),
            RemoteCertificateValidation = (_, certificate, _, _) => Certificate.IsThis(certificate),
            Reconnect = StompReconnectOptions.Disabled,
        });
        await RoundTripAsync(client);
    }

    [Fact]
    public async Task The_dotnet_client_works_over_wss()
    {
        await using var client = await StompClient.ConnectAsync(new StompClientOptions
        {
            Uri = broker.SecureWebSocketUri,
            RemoteCertificateValidation = (_, certificate, _, _) => Certificate.IsThis(certificate),
            Reconnect = StompReconnectOptions.Disabled,
        });
        await RoundTripAsync(client);
    }

    [Fact]
    public async Task A_websocket_client_works_over_wss_and_messages_cross_to_tls_tcp()
    {
        await using var ws = await StompTestClient.ConnectWebSocketAsync(
            broker.SecureWebSocketUri, configure: o => o.RemoteCertificateValidationCallback = (_, certificate, _, _) => Certificate.IsThis(certificate));
        Assert.Equal("v12.stomp", ws.SubProtocol);
        await ws.ConnectAsync();
        await using var tcp = await ConnectTlsAsync(Server.TcpPort);
        await tcp.ConnectAsync();

        var queue = Unique.Queue("tls");
        await ws.SubscribeAsync(queue, "q");
        await tcp.SendAsync(queue, "across TLS listeners", receipt: true);
        Assert.Equal("across TLS listeners", (await ws.ReceiveMessageAsync()).BodyText);
    }

    [Fact]
    public async Task A_client_that_validates_certificates_refuses_the_self_signed_one()
    {
        // Proof that TLS is really on, and that trust is the client's choice.
        using var socket = new ClientWebSocket();
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(broker.SecureWebSocketUri, CancellationToken.None));

        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", Server.TcpPort);
        await using var ssl = new SslStream(tcp.GetStream());
        await Assert.ThrowsAsync<AuthenticationException>(() => ssl.AuthenticateAsClientAsync("127.0.0.1"));
    }

    [Fact]
    public async Task Plain_stomp_on_the_tls_port_is_not_answered()
    {
        await using var client = await StompTestClient.ConnectTcpAsync(Server.TcpPort);
        await client.SendRawAsync("CONNECT\naccept-version:1.2\nhost:/\n\n\0");
        Assert.Empty(await client.ExpectClosedAsync());
    }

    [Fact]
    public async Task Plain_ws_on_the_wss_port_fails()
    {
        using var socket = new ClientWebSocket();
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(Server.WebSocketUri, CancellationToken.None));
    }

    [Fact]
    public async Task Stomp_js_works_over_wss_trusting_the_certificate()
    {
        await ExternalClient.RunStompJsAsync(broker.SecureWebSocketUri, "pubsub", "--ca", Certificate.CertificatePath);
    }

    [Fact]
    public async Task A_pkcs12_file_with_a_password_serves_tls()
    {
        await using var server = await BrokerServer.StartAsync(
            $"Broker:Tcp:Tls:CertificatePath={Certificate.PfxPath}", $"Broker:Tcp:Tls:Password={TestCertificate.PfxPassword}");
        await using var client = await ConnectTlsAsync(server.TcpPort);
        await client.ConnectAsync();
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task A_certificate_from_the_store_serves_wss()
    {
        // The current user's store (on Linux a folder under ~/.dotnet): added for this test, removed after it.
        using var withKey = X509CertificateLoader.LoadPkcs12FromFile(Certificate.PfxPath, TestCertificate.PfxPassword, X509KeyStorageFlags.Exportable);
        using var store = new X509Store(StoreName.My, StoreLocation.CurrentUser);
        store.Open(OpenFlags.ReadWrite);
        store.Add(withKey);
        try
        {
            await using var server = await BrokerServer.StartAsync(
                "Broker:WebSocket:Tls:StoreName=My", "Broker:WebSocket:Tls:StoreLocation=CurrentUser", $"Broker:WebSocket:Tls:Thumbprint={withKey.Thumbprint}");
            await using var client = await StompTestClient.ConnectWebSocketAsync(
                new Uri($"wss://127.0.0.1:{server.WebSocketPort}/ws"),
                configure: o => o.RemoteCertificateValidationCallback = (_, certificate, _, _) => Certificate.IsThis(certificate));
            await client.ConnectAsync();
            await client.AssertAliveAsync();
        }
        finally
        {
            store.Remove(withKey);
        }
    }

    [Fact]
    public async Task A_missing_certificate_file_stops_the_broker_at_start_naming_the_setting()
    {
        var missing = Path.Combine(Certificate.Folder, "missing.pem");
        var failure = await BrokerApp.StartRefusedAsync($"Broker:Tcp:Tls:CertificatePath={missing}", $"Broker:Tcp:Tls:KeyPath={Certificate.KeyPath}");
        Assert.Contains($"Broker:Tcp:Tls:CertificatePath '{missing}' does not exist", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_thumbprint_stops_the_broker_at_start_naming_the_setting()
    {
        var failure = await BrokerApp.StartRefusedAsync("Broker:WebSocket:Tls:Thumbprint=0000000000000000000000000000000000000000");
        Assert.Contains("Broker:WebSocket:Tls: no certificate with thumbprint", failure.Message, StringComparison.Ordinal);
    }

    private async Task<StompTestClient> ConnectTlsAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, certificate, _, _) => Certificate.IsThis(certificate));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" });
        Assert.True(ssl.IsAuthenticated && ssl.IsEncrypted);
        Assert.True(Certificate.IsThis(ssl.RemoteCertificate), "the server presented another certificate");
        return StompTestClient.FromStream(ssl);
    }

    private static async Task RoundTripAsync(StompClient client)
    {
        var queue = Unique.Queue("tls-client");
        await using var subscription = await client.SubscribeAsync(queue);
        await client.SendAsync(queue, "over TLS", new StompSendOptions { WaitForReceipt = true });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var message = await subscription.ReceiveAsync(timeout.Token);
        Assert.Equal("over TLS", message.BodyText);
    }
}
