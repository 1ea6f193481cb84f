using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

public sealed class SmokeTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task Tcp_and_websocket_clients_exchange_a_topic_message()
    {
        await using var tcp = await StompTestClient.ConnectTcpAsync(broker.Server.TcpPort);
        await using var ws = await StompTestClient.ConnectWebSocketAsync(broker.Server.WebSocketUri);
        Assert.Equal("v12.stomp", ws.SubProtocol);
        await tcp.ConnectAsync();
        await ws.ConnectAsync();
        await ws.SubscribeAsync("/topic/smoke", "s1");
        await tcp.SendAsync("/topic/smoke", "hi", receipt: true, ("x-custom", "a:b"));

        var message = await ws.ReceiveAsync();
        Assert.Equal(StompCommand.Message, message.Command);
        Assert.Equal("hi", message.BodyText);
        Assert.Equal("a:b", message["x-custom"]);
        Assert.Equal("s1", message["subscription"]);
        Assert.Equal("/topic/smoke", message["destination"]);
    }
}
