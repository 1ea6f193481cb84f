using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Broker.Sessions;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.WebUtilities;

namespace Broker.Transports.WebSockets;

/// <summary>
/// The WebSocket upgrade done on the connection, before Kestrel's HTTP layer, for the common case: a well-formed
/// upgrade to the STOMP path that the broker accepts. An upgraded request through ASP.NET Core keeps its HTTP objects
/// (HttpContext, request headers, the hosting scope: about 9 KB) alive for as long as the WebSocket lives; here only
/// the WebSocket and the session remain. Anything else (another path, a page, a request split over several reads, an
/// upgrade the broker refuses) goes on to the HTTP pipeline untouched, where <see cref="WebSocketEndpoint"/> answers
/// it: the refusals (403, 400, 503) have one implementation. Both paths end in the same <see cref="WebSocketTransport"/>.
/// </summary>
internal sealed class WebSocketConnectionUpgrade(SessionContext context, WebSocketEndpoint endpoint, TimeSpan requestHeadersTimeout)
{
    private const int MaxRequestHeadBytes = 16 * 1024;

    /// <summary>
    /// The connection's task for Kestrel: the session's own task once the upgrade is taken (or the HTTP pipeline's),
    /// so that an idle WebSocket keeps no state machine of the handshake, only a small promise.
    /// </summary>
    public Task HandleAsync(ConnectionContext connection, ConnectionDelegate next) => StartAsync(connection, next).Unwrap();

    private async Task<Task> StartAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        var input = connection.Transport.Input;
        ReadResult read;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed))
        {
            // Kestrel's own header timeout does not run until the HTTP layer has the connection: apply it here.
            timeout.CancelAfter(requestHeadersTimeout);
            try
            {
                read = await input.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                return Task.CompletedTask; // nothing (or nothing more) came in time: close, as Kestrel would
            }
        }

        var session = TryStartSession(connection, read.Buffer, (connection.RemoteEndPoint as IPEndPoint)?.Address);
        if (session is null)
        {
            // Not ours: the HTTP layer reads the same bytes again.
            input.AdvanceTo(read.Buffer.Start);
            return next(connection);
        }

        return session; // it gives back the connection slot that Accepts took when it ends
    }

    // Not async, so that nothing of the request outlives the handshake: an idle WebSocket keeps only its session.
    // The request is read where it lies, as bytes: a string is made only for what the session keeps.
    private Task? TryStartSession(ConnectionContext connection, ReadOnlySequence<byte> buffer, IPAddress? address)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> headSequence, "\r\n\r\n"u8) || headSequence.Length > MaxRequestHeadBytes)
        {
            return null;
        }

        var headLength = headSequence.Length + 4;
        byte[]? rented = null;
        try
        {
            ReadOnlySpan<byte> head;
            if (headSequence.IsSingleSegment)
            {
                head = headSequence.FirstSpan;
            }
            else
            {
                rented = ArrayPool<byte>.Shared.Rent((int)headSequence.Length);
                headSequence.CopyTo(rented);
                head = rented.AsSpan(0, (int)headSequence.Length);
            }

            if (!TryParseUpgrade(head, out var request) || !Accepts(address, request, out var chosen))
            {
                return null;
            }

            var deflate = context.Options.WebSocket.Compression && !request.Extensions.IsEmpty
                ? PerMessageDeflate.Negotiate(Encoding.Latin1.GetString(request.Extensions))
                : null;
            WriteResponse(connection.Transport.Output, request.Key, chosen, deflate?.Response); // sent by the session's first flush
            var bearer = BearerToken(request);
            // Only now: the request's views point into the buffer that this gives back.
            connection.Transport.Input.AdvanceTo(buffer.GetPosition(headLength));
            return endpoint.RunSessionAsync(
                connection.Transport, connection, static c => ((ConnectionContext)c).Abort(), connection.RemoteEndPoint, chosen, deflate?.ServerWindowBits,
                bearer, address, connection.ConnectionClosed);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static void WriteResponse(IBufferWriter<byte> output, ReadOnlySpan<byte> key, string? subProtocol, string? extensions)
    {
        output.Write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: "u8);
        Span<byte> accept = stackalloc byte[WebSocketEndpoint.AcceptKeyLength];
        WebSocketEndpoint.AcceptKey(key, accept);
        output.Write(accept);
        if (subProtocol is not null)
        {
            output.Write("\r\nSec-WebSocket-Protocol: "u8);
            WriteAscii(output, subProtocol);
        }

        if (extensions is not null)
        {
            output.Write("\r\nSec-WebSocket-Extensions: "u8);
            WriteAscii(output, extensions);
        }

        output.Write("\r\n\r\n"u8);
    }

    private static void WriteAscii(IBufferWriter<byte> output, string text)
    {
        var span = output.GetSpan(text.Length);
        var written = Encoding.ASCII.GetBytes(text, span);
        output.Advance(written);
    }

    // Everything WebSocketEndpoint would check before accepting; any "no" leaves the request to it, to refuse.
    private bool Accepts(IPAddress? address, in UpgradeRequest request, out string? chosen)
    {
        chosen = null;
        var originAllowed = context.Options.Security.AllowedOrigins.Count == 0 || endpoint.IsOriginAllowed(Encoding.Latin1.GetString(request.Origin));
        if (!originAllowed || context.Registry.IsShuttingDown || !WebSocketEndpoint.TryChooseSubProtocol(request.SubProtocols, out chosen))
        {
            return false;
        }

        return context.Registry.TryAcquireConnection(address, context.Options.Limits, out _);
    }

    private static string? BearerToken(in UpgradeRequest request)
    {
        string? accessToken = null;
        if (request.Query.IndexOf("access_token"u8) >= 0
            && QueryHelpers.ParseQuery(Encoding.Latin1.GetString(request.Query)).TryGetValue("access_token", out var token))
        {
            accessToken = token.FirstOrDefault();
        }

        return WebSocketEndpoint.BearerToken(request.Authorization.IsEmpty ? null : Encoding.Latin1.GetString(request.Authorization), accessToken);
    }

    /// <summary>The parts of an upgrade request the broker uses, as views into the request's bytes.</summary>
    private ref struct UpgradeRequest
    {
        public ReadOnlySpan<byte> Key;
        public ReadOnlySpan<byte> SubProtocols; // a comma-separated list
        public ReadOnlySpan<byte> Extensions;
        public ReadOnlySpan<byte> Origin;
        public ReadOnlySpan<byte> Authorization;
        public ReadOnlySpan<byte> Query; // from the '?' on
    }

    // A GET of the STOMP path over HTTP/1.1 with the RFC 6455 headers and no body, whole in the first read. A header the
    // broker needs once and finds twice (two keys, two extension lists) leaves the request to the HTTP pipeline.
    private bool TryParseUpgrade(ReadOnlySpan<byte> head, out UpgradeRequest request)
    {
        request = default;
        var lineEnd = head.IndexOf("\r\n"u8);
        var requestLine = lineEnd < 0 ? head : head[..lineEnd];
        var rest = lineEnd < 0 ? [] : head[(lineEnd + 2)..];
        if (!requestLine.StartsWith("GET "u8) || !requestLine.EndsWith(" HTTP/1.1"u8))
        {
            return false;
        }

        var target = requestLine[4..^9];
        if (target.IndexOf((byte)' ') >= 0)
        {
            return false;
        }

        var queryAt = target.IndexOf((byte)'?');
        var path = queryAt < 0 ? target : target[..queryAt];
        request.Query = queryAt < 0 ? [] : target[queryAt..];
        if (!Ascii.EqualsIgnoreCase(path, context.Options.WebSocket.Path))
        {
            return false;
        }

        var version = ReadOnlySpan<byte>.Empty;
        var upgrade = ReadOnlySpan<byte>.Empty;
        var connectionHeader = ReadOnlySpan<byte>.Empty;
        var protocolHeaders = 0;
        while (!rest.IsEmpty)
        {
            lineEnd = rest.IndexOf("\r\n"u8);
            var line = lineEnd < 0 ? rest : rest[..lineEnd];
            rest = lineEnd < 0 ? [] : rest[(lineEnd + 2)..];
            var colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                return false;
            }

            var name = line[..colon].Trim(" \t"u8);
            var value = line[(colon + 1)..].Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(name, "Sec-WebSocket-Key"u8))
            {
                if (!request.Key.IsEmpty || value.Length != 24)
                {
                    return false; // twice, or not 16 bytes in base64: the HTTP pipeline refuses it
                }

                request.Key = value;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Sec-WebSocket-Version"u8))
            {
                version = value;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Upgrade"u8))
            {
                upgrade = value;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Connection"u8))
            {
                connectionHeader = value;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Sec-WebSocket-Protocol"u8))
            {
                if (++protocolHeaders > 1)
                {
                    return false; // several lists: rare enough to leave to the HTTP pipeline
                }

                request.SubProtocols = value;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Sec-WebSocket-Extensions"u8))
            {
                if (!request.Extensions.IsEmpty)
                {
                    return false;
                }

                request.Extensions = value;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Origin"u8))
            {
                request.Origin = value;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Authorization"u8))
            {
                request.Authorization = value;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8) || Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                return false; // a body: not a plain upgrade
            }
        }

        return !request.Key.IsEmpty && version.SequenceEqual("13"u8) && Ascii.EqualsIgnoreCase(upgrade, "websocket"u8)
            && HasToken(connectionHeader, "upgrade"u8);
    }

    private static bool HasToken(ReadOnlySpan<byte> list, ReadOnlySpan<byte> token)
    {
        foreach (var range in list.Split((byte)','))
        {
            if (Ascii.EqualsIgnoreCase(list[range].Trim(" \t"u8), token))
            {
                return true;
            }
        }

        return false;
    }
}
