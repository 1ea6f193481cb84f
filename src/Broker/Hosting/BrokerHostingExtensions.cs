using System.Net;
using Broker.Backends.InMemory;
using Broker.Backends.RabbitMq;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Broker.Configuration;
using Broker.Diagnostics;
using Broker.Diagnostics.Status;
using Broker.Routing;
using Broker.Security;
using Broker.Sessions;
using Broker.Transports;
using Broker.Transports.IoUring;
using Broker.Transports.WebSockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>Wires the broker into an ASP.NET Core app: options, listeners, backend, WebSocket endpoint, shutdown.</summary>
public static class BrokerHostingExtensions
{
    /// <summary>Registers the broker's services and its Kestrel listeners, from the <c>Broker</c> configuration section.</summary>
    public static WebApplicationBuilder AddStompBroker(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var section = builder.Configuration.GetSection(BrokerOptions.SectionName);
        var options = section.Get<BrokerOptions>() ?? new BrokerOptions();

        builder.Services.AddOptions<BrokerOptions>()
            .Bind(section)
            // Binding adds configured items to a list's initial ones, so the built-in "/" lives here, not in the list.
            .PostConfigure(o => o.Security.VirtualHosts = o.Security.VirtualHosts.Count == 0 ? [o.Security.DefaultVirtualHost] : [.. o.Security.VirtualHosts.Distinct()])
            .ValidateDataAnnotations()
            .Validate(o => o.Tcp.Port != 0 || o.WebSocket.Port != 0, "Broker:Tcp:Port and Broker:WebSocket:Port are both 0: turn on at least one listener.")
            .Validate(o => o.Tcp.Port == 0 || o.Tcp.Port != o.WebSocket.Port, "Broker:Tcp:Port and Broker:WebSocket:Port must differ.")
            .Validate(o => o.WebSocket.Path.StartsWith('/'), "Broker:WebSocket:Path must start with '/'.")
            .Validate(o => o.Limits.ConnectTimeout > TimeSpan.Zero, "Broker:Limits:ConnectTimeout must be positive, such as 00:00:10.")
            .Validate(o => ParseBindAddress(o.BindAddress) is not null, "Broker:BindAddress must be an IP address, 'localhost' or '*'.")
            .Validate(
                o => o.Backend != BackendKind.RabbitMq || Uri.TryCreate(o.RabbitMq.Uri, UriKind.Absolute, out var uri) && uri.Scheme is "amqp" or "amqps",
                "Broker:RabbitMq:Uri must be an amqp:// or amqps:// URI, such as amqp://guest:guest@localhost:5672/.")
            .Validate(
                o => new Authenticator(Options.Create(o)).AnyProvider,
                "No authentication provider: anonymous access is off (Broker:Security:Anonymous=false, or by default when Broker:BindAddress is "
                + "beyond loopback, unless Broker:Security:Anonymous=true). Configure Broker:Security:Users or Broker:Security:Jwt, or allow anonymous explicitly.")
            .Validate(
                o => o.Security.Users.Values.All(u => PasswordHasher.IsWellFormed(u.PasswordHash)),
                "Broker:Security:Users: every user needs a PasswordHash made by `dotnet run --project src/Broker -- hash-password`.")
            .Validate(
                o => !o.Security.Jwt.Enabled || o.Security.Jwt.SymmetricKeys.Count + o.Security.Jwt.PublicKeys.Count > 0,
                "Broker:Security:Jwt is enabled but has no SymmetricKeys or PublicKeys to check signatures with.")
            .Validate(
                o => o.Security.VirtualHosts.Contains(o.Security.DefaultVirtualHost),
                "Broker:Security:DefaultVirtualHost must be one of Broker:Security:VirtualHosts.")
            .Validate(o => o.Status.Interval >= TimeSpan.FromMilliseconds(100), "Broker:Status:Interval must be at least 00:00:00.1.")
            .ValidateOnStart();

        builder.Services.AddSingleton(TimeProvider.System);
        if (options.Backend == BackendKind.RabbitMq)
        {
            builder.Services.AddSingleton<RabbitMqBackend>();
            builder.Services.AddSingleton<IMessageBackend>(sp => sp.GetRequiredService<RabbitMqBackend>());
            builder.Services.AddHostedService(sp => sp.GetRequiredService<RabbitMqBackend>());
        }
        else
        {
            builder.Services.AddSingleton(_ => new InMemoryBackend(new QueueStorageBudget(options.Limits.MaxQueuedBytes)));
            builder.Services.AddSingleton<IMessageBackend>(sp => sp.GetRequiredService<InMemoryBackend>());
        }

        builder.Services.AddMetrics();
        builder.Services.AddSingleton(sp =>
        {
            var metrics = new BrokerMetrics(sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
            metrics.ObserveState(sp.GetRequiredService<SessionRegistry>(), sp.GetRequiredService<VirtualHosts>());
            return metrics;
        });
        builder.Services.AddSingleton<Authenticator>();
        builder.Services.AddSingleton<DestinationAuthorizer>();
        builder.Services.AddSingleton<VirtualHosts>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<VirtualHosts>());
        builder.Services.AddSingleton<PrometheusExporter>();
        builder.Services.AddSingleton(sp => new SessionContext(
            sp.GetRequiredService<IOptions<BrokerOptions>>().Value,
            sp.GetRequiredService<VirtualHosts>(),
            sp.GetRequiredService<SessionRegistry>(),
            sp.GetRequiredService<Authenticator>(),
            sp.GetRequiredService<DestinationAuthorizer>(),
            sp.GetRequiredService<BrokerMetrics>(),
            sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddHealthChecks()
            .AddCheck<BackendHealthCheck>("backend", tags: ["ready"]);
        builder.Services.AddSingleton<SessionRegistry>();
        builder.Services.AddSingleton<WebSocketEndpoint>();
        if (options.Status.Enabled)
        {
            builder.Services.AddSingleton<StatusPublisher>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<StatusPublisher>());
        }

        builder.Services.AddHostedService<BrokerLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownGracePeriod + TimeSpan.FromSeconds(5));

        // A frame must fit in the socket's input pipe before the parser can take it; the parser enforces the limit.
        builder.WebHost.UseSockets(o =>
        {
            o.MaxReadBufferSize = options.Limits.MaxFrameBytes + (64L * 1024);
            o.UnsafePreferInlineScheduling = options.InlineScheduling;
        });
        if (options.Transport == ConnectionTransport.IoUring)
        {
            if (!OperatingSystem.IsLinux())
            {
                throw new InvalidOperationException("Broker:Transport is IoUring, which needs Linux 5.19 or later; use Sockets here.");
            }

            // Registered after UseSockets: Kestrel binds with the last transport registered.
            var transportOptions = new IoUringTransportOptions
            {
                MaxConnections = options.Limits.MaxConnections,
                Rings = options.IoUring.Rings,
                SlotsPerRing = options.IoUring.SlotsPerRing,
                MaxReadBufferSize = options.Limits.MaxFrameBytes + (64L * 1024),
            };
            builder.Services.AddSingleton<IConnectionListenerFactory>(sp => new IoUringTransport(transportOptions, sp.GetRequiredService<ILoggerFactory>()));
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            var address = ParseBindAddress(options.BindAddress) ?? IPAddress.Loopback;
            if (options.Tcp.Port != 0)
            {
                kestrel.Listen(address, options.Tcp.Port, listen =>
                {
                    // TLS terminates in Kestrel's connection pipeline, before the STOMP handler sees a byte.
                    if (options.Tcp.Tls.Enabled)
                    {
                        listen.UseHttps(TlsCertificates.Load(options.Tcp.Tls, "Broker:Tcp:Tls"));
                    }

                    listen.UseConnectionHandler<TcpConnectionHandler>();
                });
            }

            if (options.WebSocket.Port != 0)
            {
                kestrel.Listen(address, options.WebSocket.Port, listen =>
                {
                    // WebSockets over HTTP/1.1 only (as RabbitMQ Web-STOMP): the broker frames them itself, on the
                    // connection; RFC 8441 over HTTP/2 would need ASP.NET Core's WebSocket instead.
                    listen.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1;
                    if (options.WebSocket.Tls.Enabled)
                    {
                        listen.UseHttps(TlsCertificates.Load(options.WebSocket.Tls, "Broker:WebSocket:Tls"));
                    }

                    // After TLS: a plain STOMP upgrade is taken on the connection, everything else goes on to HTTP.
                    var upgrade = new WebSocketConnectionUpgrade(
                        listen.ApplicationServices.GetRequiredService<SessionContext>(),
                        listen.ApplicationServices.GetRequiredService<WebSocketEndpoint>(),
                        kestrel.Limits.RequestHeadersTimeout);
                    listen.Use(next => connection => upgrade.HandleAsync(connection, next));
                });
            }
        });

        return builder;
    }

    /// <summary>Maps the WebSocket endpoint on the WebSocket listener.</summary>
    public static WebApplication MapStompBroker(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var options = app.Services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        if (options.WebSocket.Port != 0)
        {
            app.UseWebSockets(); // only to recognise an upgrade request: the broker answers it itself
            var endpoint = app.Services.GetRequiredService<WebSocketEndpoint>();
            // Only the WebSocket listener speaks HTTP (the TCP listener is raw STOMP), so no host filter: behind a proxy
            // the Host header names the proxy, not this port.
            app.Map(options.WebSocket.Path, endpoint.HandleAsync);

            // Live: the process answers. Ready: it can take messages (the RabbitMQ link, when that backend is on).
            // Created now, not on the first scrape: a listener only sees measurements made after it starts.
            var exporter = app.Services.GetRequiredService<PrometheusExporter>();
            app.MapGet("/metrics", () => Results.Text(exporter.Render(), "text/plain; version=0.0.4; charset=utf-8"));
            app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
            app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") });

            // The status page and demos (wwwroot) and GET /api/status.
            if (options.Status.Enabled)
            {
                StatusEndpoints.MapStatus(app);
            }
        }

        return app;
    }

    internal static IPAddress? ParseBindAddress(string value) => value switch
    {
        "*" => IPAddress.Any,
        "localhost" => IPAddress.Loopback,
        _ => IPAddress.TryParse(value, out var address) ? address : null,
    };
}
