using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Security;

/// <summary>A broker whose WebSocket endpoint admits pages from two origins only.</summary>
public sealed class OriginBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
        "Broker:Security:AllowedOrigins:0=https://app.example",
        "Broker:Security:AllowedOrigins:1=http://localhost:8080");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The WebSocket Origin allow-list: a listed origin connects, anything else gets HTTP 403 before any STOMP.</summary>
public sealed class OriginTests(OriginBrokerFixture broker) : IClassFixture<OriginBrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData("https://app.example")]
    [InlineData("HTTPS://APP.EXAMPLE")] // scheme and host are case-insensitive
    [InlineData("http://localhost:8080")]
    public async Task A_listed_origin_connects(string origin)
    {
        await using var client = await StompTestClient.ConnectWebSocketAsync(Server.WebSocketUri, configure: o => o.SetRequestHeader("Origin", origin));
        await client.ConnectAsync();
        await client.AssertAliveAsync();
    }

    [Theory]
    [InlineData("https://evil.example")]
    [InlineData("https://app.example.evil.example")]
    [InlineData("http://app.example")] // another scheme is another origin
    [InlineData("http://localhost:8081")] // and so is another port
    [InlineData("null")] // sandboxed iframes and file:// pages
    public async Task Another_origin_gets_403(string origin)
    {
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("v12.stomp");
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Origin", origin);
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(Server.WebSocketUri, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Forbidden, socket.HttpStatusCode);

        var (status, body) = await RawUpgradeAsync(origin);
        Assert.Equal(403, status);
        Assert.Contains($"Origin '{origin}' is not allowed", body, StringComparison.Ordinal);

        // Others are unaffected.
        await using var allowed = await StompTestClient.ConnectWebSocketAsync(Server.WebSocketUri, configure: o => o.SetRequestHeader("Origin", "https://app.example"));
        await allowed.ConnectAsync();
        await allowed.AssertAliveAsync();
    }

    [Fact]
    public async Task No_origin_gets_403_too_when_a_list_is_set()
    {
        // Decision: with an allow-list, an upgrade without Origin (a non-browser client) is refused as well; such clients
        // use the TCP listener, or a broker without an Origin list.
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(Server.WebSocketUri, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Forbidden, socket.HttpStatusCode);

        var (status, body) = await RawUpgradeAsync(origin: null);
        Assert.Equal(403, status);
        Assert.Contains("Origin '' is not allowed", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_tcp_listener_knows_no_origins()
    {
        await using var client = await Server.ConnectClientAsync(Transport.Tcp);
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task Without_a_list_any_origin_and_none_connect()
    {
        await using var server = await BrokerServer.StartAsync();
        await using var withOrigin = await StompTestClient.ConnectWebSocketAsync(server.WebSocketUri, configure: o => o.SetRequestHeader("Origin", "https://anywhere.example"));
        await withOrigin.ConnectAsync();
        await withOrigin.AssertAliveAsync();
        await using var without = await StompTestClient.ConnectWebSocketAsync(server.WebSocketUri);
        await without.ConnectAsync();
        await without.AssertAliveAsync();
    }

    private async Task<(int Status, string Body)> RawUpgradeAsync(string? origin)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{Server.WebSocketPort}/ws"));
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new ProductHeaderValue("websocket"));
        request.Headers.Add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Protocol", "v12.stomp");
        if (origin is not null)
        {
            request.Headers.TryAddWithoutValidation("Origin", origin);
        }

        using var response = await http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
