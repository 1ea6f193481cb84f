using System.IO.Pipelines;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Broker.Diagnostics;
using Broker.Sessions;
using Microsoft.AspNetCore.Http.Features;

namespace Broker.Transports.WebSockets;

/// <summary>The WebSocket endpoint (<c>/ws</c> by default): subprotocol negotiation, then a session.</summary>
internal sealed class WebSocketEndpoint(SessionContext context, ILoggerFactory loggers)
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
        if (!TryChooseSubProtocol(Encoding.Latin1.GetBytes(string.Join(',', offered)), out var chosen))
        {
            await RefuseAsync(
                httpContext, remote, StatusCodes.Status400BadRequest,
                $"No supported WebSocket subprotocol among '{string.Join(", ", offered)}'; this broker speaks {string.Join(", ", SubProtocols)}.");
            return;
        }

        var upgrade = httpContext.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is not { IsUpgradableRequest: true })
        {
            await RefuseAsync(httpContext, remote, StatusCodes.Status400BadRequest, "Only an HTTP/1.1 upgrade can open a WebSocket here.");
            return;
        }

        var address = httpContext.Connection.RemoteIpAddress;
        if (!context.Registry.TryAcquireConnection(address, context.Options.Limits, out var reason))
        {
            context.Metrics.ConnectionsRefused.Add(1, new KeyValuePair<string, object?>("reason", "limit"));
            await RefuseAsync(httpContext, remote, StatusCodes.Status503ServiceUnavailable, reason);
            return;
        }

        await RunSessionAsync(httpContext, upgrade, chosen, address);
    }

    // The upgrade through the HTTP pipeline (a request the connection-level path left alone, such as one split over
    // several reads): answered here with the same headers, then the same transport over the upgraded stream. The
    // session gives back the connection slot taken for it; if the upgrade fails first, it is given back here.
    private async Task RunSessionAsync(HttpContext httpContext, IHttpUpgradeFeature upgrade, string? chosen, IPAddress? address)
    {
        var headers = httpContext.Response.Headers;
        headers.Upgrade = "websocket";
        headers["Sec-WebSocket-Accept"] = AcceptKey(httpContext.Request.Headers.SecWebSocketKey.ToString());
        if (chosen is not null)
        {
            headers.SecWebSocketProtocol = chosen;
        }

        var deflate = context.Options.WebSocket.Compression ? PerMessageDeflate.Negotiate(httpContext.Request.Headers.SecWebSocketExtensions.ToString() is { Length: > 0 } offered ? offered : null) : null;
        if (deflate is not null)
        {
            headers.SecWebSocketExtensions = deflate.Value.Response;
        }

        Stream stream;
        try
        {
            stream = await upgrade.UpgradeAsync(); // 101 Switching Protocols, with Connection: Upgrade
        }
        catch
        {
            context.Registry.ReleaseConnection(address);
            throw;
        }

        var pipe = new UpgradedPipe(PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true)), PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)));

        // Browsers cannot set headers on a WebSocket: a token may come as ?access_token=… instead of Authorization.
        var bearer = BearerToken(
            httpContext.Request.Headers.Authorization.ToString(),
            httpContext.Request.QueryString.HasValue ? httpContext.Request.Query["access_token"].FirstOrDefault() : null);
        try
        {
            var remoteEndPoint = address is null ? null : new IPEndPoint(address, httpContext.Connection.RemotePort);
            await RunSessionAsync(
                pipe, httpContext, static c => ((HttpContext)c).Abort(), remoteEndPoint, chosen, deflate?.ServerWindowBits, bearer, address, httpContext.RequestAborted);
        }
        finally
        {
            await pipe.Input.CompleteAsync();
            await pipe.Output.CompleteAsync();
        }
    }

    /// <summary>A STOMP session over an upgraded connection, until either side ends it or the broker stops.</summary>
    /// <remarks>
    /// Not async: the session is the only thing an idle WebSocket keeps waiting (it disposes itself at its end).
    /// </remarks>
    internal Task RunSessionAsync(
        IDuplexPipe connection, object owner, Action<object> abort, EndPoint? remote, string? chosen, int? deflateWindowBits, string? bearer,
        IPAddress? slotAddress, CancellationToken connectionClosed)
    {
        var settings = context.Options.WebSocket;
        var transport = new WebSocketTransport(
            connection, owner, abort, remote, deflateWindowBits, settings.CompressionThresholdBytes, _logger)
        {
            SubProtocol = chosen,
            BearerToken = string.IsNullOrEmpty(bearer) ? null : bearer,
        };

#pragma warning disable CA2000 // StompSession.RunAsync disposes the session (and gives the slot back) when the connection ends.
        var session = new StompSession(transport, settings, context, _logger, slotAddress);
#pragma warning restore CA2000
        return session.RunAsync(connectionClosed);
    }

    /// <summary>The length of a Sec-WebSocket-Accept value: a SHA-1 hash in base64.</summary>
    internal const int AcceptKeyLength = 28;

    /// <summary>The RFC 6455 Sec-WebSocket-Accept value for a client's key.</summary>
    internal static string AcceptKey(string key)
    {
        Span<byte> accept = stackalloc byte[AcceptKeyLength];
        AcceptKey(Encoding.ASCII.GetBytes(key), accept);
        return Encoding.ASCII.GetString(accept);
    }

    /// <summary>The RFC 6455 Sec-WebSocket-Accept value for a client's key, written into <paramref name="accept"/>.</summary>
    internal static void AcceptKey(ReadOnlySpan<byte> key, Span<byte> accept)
    {
        ReadOnlySpan<byte> guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"u8;
        var input = key.Length + guid.Length <= 256 ? stackalloc byte[key.Length + guid.Length] : new byte[key.Length + guid.Length];
        key.CopyTo(input);
        guid.CopyTo(input[key.Length..]);
        Span<byte> hash = stackalloc byte[20];
#pragma warning disable CA5350 // RFC 6455 defines the accept key with SHA-1; it is not used for security.
        SHA1.HashData(input, hash);
#pragma warning restore CA5350
        System.Buffers.Text.Base64.EncodeToUtf8(hash, accept, out _, out _);
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

    /// <summary>The subprotocol to echo: the highest STOMP one in a comma-separated list; null when none was offered.</summary>
    /// <returns>False when only protocols other than STOMP's were offered.</returns>
    internal static bool TryChooseSubProtocol(ReadOnlySpan<byte> lists, out string? chosen)
    {
        chosen = null;
        var best = int.MaxValue;
        var offered = false;
        foreach (var range in lists.Split((byte)','))
        {
            var name = lists[range].Trim(" \t"u8);
            if (name.IsEmpty)
            {
                continue;
            }

            offered = true;
            for (var i = 0; i < Math.Min(best, SubProtocols.Length); i++)
            {
                if (Ascii.EqualsIgnoreCase(name, SubProtocols[i]))
                {
                    best = i;
                    break;
                }
            }
        }

        if (best < SubProtocols.Length)
        {
            chosen = SubProtocols[best];
        }

        return !offered || chosen is not null;
    }

    private async Task RefuseAsync(HttpContext context, string remote, int status, string reason)
    {
        BrokerLog.UpgradeRefused(_logger, remote, reason);
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(reason, context.RequestAborted);
    }

    private sealed record UpgradedPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
