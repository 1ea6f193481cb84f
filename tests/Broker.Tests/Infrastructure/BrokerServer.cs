using System.Net;
using System.Net.Sockets;
using Broker.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.Tests.Infrastructure;

/// <summary>
/// A real broker started in the test process on free loopback ports, exactly as Program.cs starts it, with
/// configuration overrides given as "Key=Value" pairs (the same keys as the command line).
/// </summary>
public sealed class BrokerServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private BrokerServer(WebApplication app, int tcpPort, int webSocketPort)
    {
        _app = app;
        TcpPort = tcpPort;
        WebSocketPort = webSocketPort;
    }

    public int TcpPort { get; }

    public int WebSocketPort { get; }

    public Uri WebSocketUri => new($"ws://127.0.0.1:{WebSocketPort}/ws");

    public IServiceProvider Services => _app.Services;

    public static Task<BrokerServer> StartAsync(params string[] settings) => StartAsync(configureServices: null, settings);

    /// <summary>Starts a broker whose services the test adjusts after the broker's own (e.g. a different TimeProvider).</summary>
    public static async Task<BrokerServer> StartAsync(Action<IServiceCollection>? configureServices, params string[] settings)
    {
        // A "Broker:Tcp:Port=N" or "Broker:WebSocket:Port=N" setting wins (the last argument does), e.g. to start a
        // broker again on the ports of one that stopped; the properties report the ports actually used.
        var tcpPort = PortSetting(settings, "Broker:Tcp:Port") ?? FreePort();
        var webSocketPort = PortSetting(settings, "Broker:WebSocket:Port") ?? FreePort();
        // Each FreePort probe closes its listener, so two probes in a row can get the same port (CI saw it once).
        while (webSocketPort == tcpPort && PortSetting(settings, "Broker:WebSocket:Port") is null)
        {
            webSocketPort = FreePort();
        }
        string[] args =
        [
            $"--Broker:Tcp:Port={tcpPort}",
            $"--Broker:WebSocket:Port={webSocketPort}",
            "--Broker:ShutdownGracePeriod=00:00:03",
            .. settings.Select(s => "--" + s),
        ];
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        // The broker's appsettings.json (copied beside the tests) asks for Information; the test console keeps to
        // warnings, while providers a test adds still see everything.
        builder.Logging.AddFilter<Microsoft.Extensions.Logging.Console.ConsoleLoggerProvider>(null, LogLevel.Warning);
        builder.AddStompBroker();
        configureServices?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapStompBroker();
        await app.StartAsync();
        return new BrokerServer(app, tcpPort, webSocketPort);
    }

    private static int? PortSetting(string[] settings, string key) =>
        settings.LastOrDefault(s => s.StartsWith(key + "=", StringComparison.OrdinalIgnoreCase)) is { } setting
            ? int.Parse(setting[(key.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture)
            : null;

    /// <summary>A port nobody listens on right now (the OS picks it).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public T GetService<T>()
        where T : notnull => _app.Services.GetRequiredService<T>();

    /// <summary>Stops the broker as SIGTERM would: graceful shutdown of every connection.</summary>
    public async Task StopAsync() => await _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync();
        }
        catch (ObjectDisposedException)
        {
        }

        await _app.DisposeAsync();
    }
}

/// <summary>One broker shared by the tests of a class; tests isolate themselves with unique destination names.</summary>
public sealed class BrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
