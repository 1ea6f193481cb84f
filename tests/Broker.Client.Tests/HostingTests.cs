using System.Collections.Concurrent;
using Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Client.Tests;

/// <summary>AddStompClient on the Generic Host: one shared client, connected on start, closed on stop, logging through the host.</summary>
public sealed class HostingTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task The_host_connects_the_client_on_start_and_closes_it_on_stop(Transport transport)
    {
        var logs = new CapturingLoggerProvider();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.Services.AddStompClient(Clients.Options(Server, transport));
        using var host = builder.Build();
        var client = host.Services.GetRequiredService<StompClient>();
        Assert.Same(client, host.Services.GetRequiredService<StompClient>());
        Assert.Equal(StompConnectionState.Disconnected, client.State);

        await host.StartAsync();

        Assert.Equal(StompConnectionState.Connected, client.State);
        var queue = Unique.Queue("hosted");
        await using (var subscription = await client.SubscribeAsync(queue))
        {
            await client.SendAsync(queue, "from the host", Clients.Receipted);
            Assert.Equal("from the host", (await subscription.NextAsync()).BodyText);
        }

        // The client logged through the host's logging, under its own category.
        Assert.Contains(logs.Entries, e => e.Category == typeof(StompClient).FullName && e.Level == LogLevel.Information && e.Message.Contains("Connected to", StringComparison.Ordinal));

        await host.StopAsync();
        Assert.Equal(StompConnectionState.Closed, client.State);
    }

    [Fact]
    public async Task The_options_factory_sees_the_service_provider_and_an_explicit_logger_factory_wins()
    {
        var hostLogs = new CapturingLoggerProvider();
        var ownLogs = new CapturingLoggerProvider();
        using var ownFactory = LoggerFactory.Create(b => b.AddProvider(ownLogs).SetMinimumLevel(LogLevel.Debug));
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(hostLogs);
        builder.Services.AddSingleton(new BrokerAddress(Clients.UriOf(Server, Transport.Tcp)));
        builder.Services.AddStompClient(sp => Clients.Options(sp.GetRequiredService<BrokerAddress>().Uri) with { LoggerFactory = ownFactory });
        using var host = builder.Build();

        await host.StartAsync();
        var client = host.Services.GetRequiredService<StompClient>();
        Assert.Equal(StompConnectionState.Connected, client.State);
        await host.StopAsync();

        Assert.Contains(ownLogs.Entries, e => e.Message.Contains("Connected to", StringComparison.Ordinal));
        Assert.DoesNotContain(hostLogs.Entries, e => e.Category == typeof(StompClient).FullName);
    }

    [Fact]
    public async Task A_host_whose_broker_is_unreachable_fails_to_start()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddStompClient(Clients.Options(new Uri($"tcp://127.0.0.1:{BrokerServer.FreePort()}")));
        using var host = builder.Build();

        await Assert.ThrowsAsync<StompConnectionException>(() => host.StartAsync());
    }

    private sealed record BrokerAddress(Uri Uri);
}

/// <summary>Keeps every log entry, for assertions.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<(string Category, LogLevel Level, string Message)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            provider.Entries.Enqueue((category, logLevel, formatter(state, exception)));
    }
}
