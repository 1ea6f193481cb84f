using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>A broker with short heart-beats, so the clients' heart-beat scenarios exercise both directions in seconds.</summary>
public sealed class InteropBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
        "Broker:WebSocket:HeartBeat:SendMs=500", "Broker:WebSocket:HeartBeat:ReceiveMs=500", "Broker:WebSocket:HeartBeat:MinMs=100",
        "Broker:Tcp:HeartBeat:SendMs=500", "Broker:Tcp:HeartBeat:ReceiveMs=500", "Broker:Tcp:HeartBeat:MinMs=100");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The real @stomp/stompjs 7 client (npm, pinned by tests/interop/package-lock.json) over WebSocket in Node.</summary>
public sealed class StompJsInteropTests(InteropBrokerFixture broker) : IClassFixture<InteropBrokerFixture>
{
    [Theory]
    [InlineData("connect")]
    [InlineData("pubsub")]
    [InlineData("queue")]
    [InlineData("receipt")]
    [InlineData("client-ack")]
    [InlineData("transaction")]
    [InlineData("binary")]
    [InlineData("large")]
    [InlineData("heartbeat")]
    public Task Stompjs_scenario_passes(string scenario) => ExternalClient.RunStompJsAsync(broker.Server.WebSocketUri, scenario);
}

/// <summary>The real stomp.py (Debian python3-stomp) over TCP.</summary>
public sealed class StompPyInteropTests(InteropBrokerFixture broker) : IClassFixture<InteropBrokerFixture>
{
    [Theory]
    [InlineData("connect")]
    [InlineData("pubsub")]
    [InlineData("queue")]
    [InlineData("receipt")]
    [InlineData("client-ack")]
    [InlineData("transaction")]
    [InlineData("binary")]
    public Task Stomppy_scenario_passes(string scenario) => ExternalClient.RunStompPyAsync(broker.Server.TcpPort, scenario);
}
