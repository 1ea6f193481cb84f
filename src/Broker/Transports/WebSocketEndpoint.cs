using Broker.Diagnostics;
using System.Net.WebSockets;
using Broker.Sessions;

namespace Broker.Transports;

/// <summary>The WebSocket endpoint (<c>/ws</c> by default): subprotocol negotiation, then a session.</summary>
internal sealed class WebSocketEndpoint(SessionContext context, ILoggerFactory loggers, IHostApplicationLifetime lifetime)
{
    /// <summary>The STOMP subprotocols in order of preference (the IANA registry's names).</summary>
    public static readonly string[] SubProtocols = ["v12.stomp", "v11.stomp", "v10.stomp"];

    private readonly ILogger _logger = loggers.CreateLogger("Broker.WebSocket");

    public async Task HandleAsync(HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        var remote = $"{httpContext.Connection.RemoteIpAddress}:{httpContext.Connection.RemotePort}";
        if (!httpContext.WebSockets.IsWebSocketRequest)
        {
            await RefuseAsync(httpContext, remote, StatusCodes.Status400BadRequest, "This endpoint speaks STOMP over WebSocket; connect with a WebSocket client.");
            return;
        }

        // Browsers always send Origin; with an allow-list, a page from anywhere else is refused before any STOMP.
        if (!IsOriginAllowed(httpContext.Request.Headers.Origin.ToString()))
        {
            context.Metrics.ConnectionsRefused.Add(1, new KeyValuePair<string, object?>("reason", "origin"));
            await RefuseAsync(httpContext, remote, StatusCodes.Status403Forbidden, $"Origin '{httpContext.Request.Headers.Origin}' is not allowed.");
            return;
        }

        if (context.Registry.IsShuttingDown)
        {
            await RefuseAsync(httpContext, remote, StatusCodes.Status503ServiceUnavailable, "The broker is shutting down.");
            return;
        }

        // Echo exactly one offered subprotocol, the highest STOMP version; none offered is fine; only unknown ones is not.
        var offered = httpContext.WebSockets.WebSocketRequestedProtocols;
        if (!TryChooseSubProtocol([.. offered], out var chosen))
        {
            await RefuseAsync(
                httpContext, remote, StatusCodes.Status400BadRequest,
                $"No supported WebSocket subprotocol among '{string.Join(", ", offered)}'; this broker speaks {string.Join(", ", SubProtocols)}.");
            return;
        }

        var address = httpContext.Connection.RemoteIpAddress;
        if (!context.Registry.TryAcquireConnection(address, context.Options.Limits, out var reason))
        {
            context.Metrics.ConnectionsRefused.Add(1, new KeyValuePair<string, object?>("reason", "limit"));
            await RefuseAsync(httpContext, remote, StatusCodes.Status503ServiceUnavailable, reason);
            return;
        }

        try
        {
            await RunSessionAsync(httpContext, remote, chosen);
        }
        finally
        {
            context.Registry.ReleaseConnection(address);
        }
    }

    private async Task RunSessionAsync(HttpContext httpContext, string remote, string? chosen)
    {
        var settings = context.Options.WebSocket;
        using var socket = await httpContext.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            SubProtocol = chosen,
            DangerousEnableCompression = settings.Compression,
            // A compressor kept between messages holds ~256 KiB of zlib state for the life of the connection, idle or
            // not; without context takeover it exists only while a (large enough) message is compressed.
            DisableServerContextTakeover = true,
            KeepAliveInterval = TimeSpan.Zero, // STOMP heart-beats keep the connection alive.
        });

        // Browsers cannot set headers on a WebSocket: a token may come as ?access_token=… instead of Authorization.
        var bearer = BearerToken(
            httpContext.Request.Headers.Authorization.ToString(),
            httpContext.Request.QueryString.HasValue ? httpContext.Request.Query["access_token"].FirstOrDefault() : null);
        await RunSessionAsync(socket, remote, chosen, bearer, httpContext.RequestAborted);
    }

    /// <summary>A STOMP session over an accepted WebSocket, until either side ends it or the broker stops.</summary>
    internal async Task RunSessionAsync(WebSocket socket, string remote, string? chosen, string? bearer, CancellationToken connectionClosed)
    {
        var settings = context.Options.WebSocket;
        var transport = new WebSocketTransport(socket, remote, context.Options.Limits.MaxFrameBytes, settings.CompressionThresholdBytes)
        {
            SubProtocol = chosen,
            BearerToken = string.IsNullOrEmpty(bearer) ? null : bearer,
        };

        // The server's stopping token ends the receive loop on shutdown.
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(connectionClosed, lifetime.ApplicationStopped);
        transport.StartReceiving(aborted.Token);
        using var session = new StompSession(transport, settings, context, _logger);
        await session.RunAsync(aborted.Token);
    }

    /// <summary>Whether the Origin allow-list (if any) admits <paramref name="origin"/>; a missing Origin is "".</summary>
    internal bool IsOriginAllowed(string origin)
    {
        var allowed = context.Options.Security.AllowedOrigins;
        return allowed.Count == 0 || allowed.Contains(origin, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The bearer token of an upgrade: the Authorization header's, else the access_token query parameter.</summary>
    internal static string? BearerToken(string? authorization, string? accessToken) =>
        authorization is not null && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? authorization["Bearer ".Length..].Trim()
            : accessToken;

    /// <summary>The subprotocol to echo: the highest STOMP one offered; null when none was offered.</summary>
    /// <returns>False when only protocols other than STOMP's were offered.</returns>
    internal static bool TryChooseSubProtocol(IReadOnlyCollection<string> offered, out string? chosen)
    {
        chosen = null;
        if (offered.Count == 0)
        {
            return true;
        }

        chosen = SubProtocols.FirstOrDefault(p => offered.Contains(p, StringComparer.OrdinalIgnoreCase));
        return chosen is not null;
    }

    private async Task RefuseAsync(HttpContext context, string remote, int status, string reason)
    {
        BrokerLog.UpgradeRefused(_logger, remote, reason);
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(reason, context.RequestAborted);
    }
}
