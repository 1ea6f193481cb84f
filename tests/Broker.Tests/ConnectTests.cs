using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>CONNECT and STOMP, version negotiation and the CONNECTED frame (checklist 19-26).</summary>
public sealed class ConnectTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp, "CONNECT")]
    [InlineData(Transport.Tcp, "STOMP")]
    [InlineData(Transport.WebSocket, "CONNECT")]
    [InlineData(Transport.WebSocket, "STOMP")]
    public async Task Connect_and_stomp_frames_are_treated_alike(Transport transport, string command)
    {
        await using var client = await Server.OpenAsync(transport);
        await client.SendRawAsync($"{command}\naccept-version:1.2\nhost:/\n\n\0");

        var connected = await client.ReceiveAsync();
        Assert.Equal(StompCommand.Connected, connected.Command);
        Assert.Equal("1.2", connected["version"]);
        await client.AssertAliveAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp, "1.1,1.2", "1.2")]
    [InlineData(Transport.Tcp, "1.0,1.1", "1.1")]
    [InlineData(Transport.Tcp, "1.0", "1.0")]
    [InlineData(Transport.Tcp, "1.2,1.0", "1.2")]
    [InlineData(Transport.Tcp, "1.1,2.0", "1.1")]
    [InlineData(Transport.WebSocket, "1.1,1.2", "1.2")]
    [InlineData(Transport.WebSocket, "1.0,1.1", "1.1")]
    public async Task Connected_carries_the_highest_common_version(Transport transport, string acceptVersion, string expected)
    {
        await using var client = await Server.OpenAsync(transport);
        var connected = await client.ConnectAsync(acceptVersion);

        Assert.Equal(expected, connected["version"]);
        await client.AssertAliveAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_connect_without_accept_version_is_a_1_0_client(Transport transport)
    {
        await using var client = await Server.OpenAsync(transport);
        await client.SendRawAsync("CONNECT\nlogin:guest\npasscode:guest\n\n\0");

        var connected = await client.ReceiveAsync();
        Assert.Equal(StompCommand.Connected, connected.Command);
        Assert.Equal("1.0", connected["version"]);

        // STOMP 1.0 made the subscription id optional.
        var queue = Unique.Queue("v10");
        await client.SendRawAsync($"SUBSCRIBE\ndestination:{queue}\nreceipt:sub\n\n\0");
        await client.ExpectReceiptAsync("sub");
        await client.SendRawAsync($"SEND\ndestination:{queue}\n\nold times\0");
        var message = await client.ReceiveMessageAsync();
        Assert.Equal("old times", message.BodyText);
        Assert.Equal(queue, message["destination"]);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Connected_carries_heart_beat_server_and_a_unique_session(Transport transport)
    {
        await using var first = await Server.OpenAsync(transport);
        await using var second = await Server.OpenAsync(transport);
        var a = await first.ConnectAsync();
        var b = await second.ConnectAsync();

        Assert.Equal("10000,10000", a["heart-beat"]); // the listener's defaults (SendMs, ReceiveMs)
        Assert.StartsWith("StompBroker/", a["server"], StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(a["session"]));
        Assert.False(string.IsNullOrEmpty(b["session"]));
        Assert.NotEqual(a["session"], b["session"]);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Disconnect_without_receipt_closes_the_connection(Transport transport)
    {
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SendRawAsync("DISCONNECT\n\n\0");

        var frames = await client.ExpectClosedAsync();
        Assert.Empty(frames);
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        }
    }

    [Fact]
    public async Task A_second_connect_on_the_same_connection_is_an_error()
    {
        await using var client = await Server.ConnectClientAsync();
        await client.SendRawAsync("CONNECT\naccept-version:1.2\nhost:/\n\n\0");

        await client.ExpectErrorThenCloseAsync();
        await Server.AssertStillServesOthersAsync();
    }
}
