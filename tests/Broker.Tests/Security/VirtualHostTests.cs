using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Security;

/// <summary>A broker serving the virtual hosts "/" (the default) and "tenant-a".</summary>
public sealed class VirtualHostBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
        "Broker:Security:VirtualHosts:0=/",
        "Broker:Security:VirtualHosts:1=tenant-a");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Virtual hosts by the CONNECT host header: separate destinations; an unknown one is refused; none is the default.</summary>
public sealed class VirtualHostTests(VirtualHostBrokerFixture broker) : IClassFixture<VirtualHostBrokerFixture>
{
    private BrokerServer Server => broker.Server;

    private Task<StompTestClient> OnAsync(string? host, Transport transport = Transport.Tcp) =>
        host is null ? Server.ConnectWithAsync(transport) : Server.ConnectWithAsync(transport, ("host", host));

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task The_same_topic_in_two_virtual_hosts_does_not_cross(Transport transport)
    {
        var topic = Unique.Topic("vhost");
        await using var root = await OnAsync("/", transport);
        await using var tenant = await OnAsync("tenant-a", transport);
        await using var tenantSender = await OnAsync("tenant-a");
        await root.SubscribeAsync(topic, "root");
        await tenant.SubscribeAsync(topic, "tenant");

        await tenantSender.SendAsync(topic, "for tenant-a", receipt: true);
        Assert.Equal("for tenant-a", (await tenant.ReceiveMessageAsync()).BodyText);
        await root.SendAsync(topic, "for /");
        Assert.Equal("for /", (await root.ReceiveMessageAsync()).BodyText);

        await root.ExpectNothingAsync(200);
        await tenant.ExpectNothingAsync(100);
    }

    [Fact]
    public async Task The_same_queue_in_two_virtual_hosts_holds_separate_messages()
    {
        var queue = Unique.Queue("vhost");
        await using var root = await OnAsync("/");
        await using var tenant = await OnAsync("tenant-a", Transport.WebSocket);
        await root.SendAsync(queue, "root job", receipt: true);
        await tenant.SendAsync(queue, "tenant job", receipt: true);

        await tenant.SubscribeAsync(queue, "q");
        Assert.Equal("tenant job", (await tenant.ReceiveMessageAsync()).BodyText);
        await tenant.ExpectNothingAsync(200);
        await root.SubscribeAsync(queue, "q");
        Assert.Equal("root job", (await root.ReceiveMessageAsync()).BodyText);
        await root.ExpectNothingAsync(100);
    }

    [Theory]
    [InlineData(Transport.Tcp, "tenant-b")]
    [InlineData(Transport.WebSocket, "tenant-b")]
    [InlineData(Transport.Tcp, "127.0.0.1")] // a client that sends its server's host name (stomp.py does by default)
    [InlineData(Transport.Tcp, "Tenant-A")] // names are exact
    public async Task An_unknown_virtual_host_gets_an_error_naming_it_and_others_are_unaffected(Transport transport, string host)
    {
        var queue = Unique.Queue("vhost");
        await using var tenant = await OnAsync("tenant-a");
        await tenant.SubscribeAsync(queue, "q");

        var error = await Server.ConnectRefusedAsync(transport, $"unknown virtual host '{host}'", ("host", host));
        Assert.Contains("'tenant-a'", error.BodyText, StringComparison.Ordinal);

        await tenant.SendAsync(queue, "still served");
        Assert.Equal("still served", (await tenant.ReceiveMessageAsync()).BodyText);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_connect_without_a_host_header_uses_the_default_virtual_host(Transport transport)
    {
        var topic = Unique.Topic("vhost");
        await using var noHost = await OnAsync(null, transport);
        await using var root = await OnAsync("/");
        await using var tenant = await OnAsync("tenant-a");
        await noHost.SubscribeAsync(topic, "t");
        await tenant.SubscribeAsync(topic, "t");

        await root.SendAsync(topic, "to the default", receipt: true);
        Assert.Equal("to the default", (await noHost.ReceiveMessageAsync()).BodyText);
        await tenant.ExpectNothingAsync(200);
    }

    [Fact]
    public async Task Another_default_virtual_host_serves_connects_without_a_host_header()
    {
        await using var server = await BrokerServer.StartAsync(
            "Broker:Security:VirtualHosts:0=/", "Broker:Security:VirtualHosts:1=tenant-a", "Broker:Security:DefaultVirtualHost=tenant-a");
        var queue = Unique.Queue("vhost");
        await using var noHost = await server.ConnectWithAsync(Transport.Tcp);
        await noHost.SendAsync(queue, "default is tenant-a", receipt: true);
        await using var tenant = await server.ConnectWithAsync(Transport.Tcp, ("host", "tenant-a"));
        await tenant.SubscribeAsync(queue, "q");
        Assert.Equal("default is tenant-a", (await tenant.ReceiveMessageAsync()).BodyText);
    }

    [Fact]
    public async Task A_list_without_the_root_virtual_host_does_not_serve_it()
    {
        // The list replaces the built-in ["/"]; it does not add to it.
        await using var server = await BrokerServer.StartAsync(
            "Broker:Security:VirtualHosts:0=tenant-a", "Broker:Security:VirtualHosts:1=tenant-b", "Broker:Security:DefaultVirtualHost=tenant-a");
        var error = await server.ConnectRefusedAsync(Transport.Tcp, "unknown virtual host '/'", ("host", "/"));
        Assert.Contains("serves the virtual hosts 'tenant-a', 'tenant-b';", error.BodyText, StringComparison.Ordinal);
        await using var tenantB = await server.ConnectWithAsync(Transport.Tcp, ("host", "tenant-b"));
        await tenantB.AssertAliveAsync();
    }

    [Fact]
    public async Task The_error_for_an_unknown_virtual_host_lists_each_served_one_once()
    {
        var error = await Server.ConnectRefusedAsync(Transport.Tcp, "unknown virtual host 'nope'", ("host", "nope"));
        Assert.Contains("serves the virtual hosts '/', 'tenant-a';", error.BodyText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_default_virtual_host_outside_the_list_stops_the_broker_at_start()
    {
        var failure = await BrokerApp.StartRefusedAsync("Broker:Security:VirtualHosts:0=/", "Broker:Security:DefaultVirtualHost=elsewhere");
        Assert.Contains("Broker:Security:DefaultVirtualHost must be one of Broker:Security:VirtualHosts", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_host_header_of_a_stomp_frame_selects_the_virtual_host_too()
    {
        var queue = Unique.Queue("vhost");
        await using var client = await Server.OpenAsync(Transport.Tcp);
        await client.SendFrameAsync(StompCommand.Stomp, [("accept-version", "1.2"), ("host", "tenant-a")]);
        Assert.Equal(StompCommand.Connected, (await client.ReceiveAsync()).Command);
        await client.SendAsync(queue, "via STOMP", receipt: true);

        await using var tenant = await OnAsync("tenant-a");
        await tenant.SubscribeAsync(queue, "q");
        Assert.Equal("via STOMP", (await tenant.ReceiveMessageAsync()).BodyText);
    }
}
