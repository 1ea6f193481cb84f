using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Broker.Sessions;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.WebUtilities;

namespace Broker.Transports;

/// <summary>
/// The WebSocket upgrade done on the connection, before Kestrel's HTTP layer, for the common case: a well-formed
/// upgrade to the STOMP path that the broker accepts. An upgraded request through ASP.NET Core keeps its HTTP objects
/// (HttpContext, request headers, the hosting scope: about 9 KB) alive for as long as the WebSocket lives; here only
/// the WebSocket and the session remain. Anything else (another path, a page, a request split over several reads, an
/// upgrade the broker refuses) goes on to the HTTP pipeline untouched, where <see cref="WebSocketEndpoint"/> answers
/// it exactly as before: the refusals (403, 400, 503) have one implementation.
/// </summary>
internal sealed class WebSocketConnectionUpgrade(SessionContext context, WebSocketEndpoint endpoint, TimeSpan requestHeadersTimeout)
{
    private const int MaxRequestHeadBytes = 16 * 1024;

    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    public async Task HandleAsync(ConnectionContext connection, ConnectionDelegate next)
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
                return; // nothing (or nothing more) came in time: close, as Kestrel would
            }
        }

        var buffer = read.Buffer;
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address;
        if (TryParseUpgrade(buffer, out var request, out var headLength) && Accepts(address, request, out var chosen))
        {
            input.AdvanceTo(buffer.GetPosition(headLength));
            try
            {
                await RunAsync(connection, request, chosen);
            }
            finally
            {
                context.Registry.ReleaseConnection(address);
            }

            return;
        }

        // Not ours: the HTTP layer reads the same bytes again.
        input.AdvanceTo(buffer.Start);
        await next(connection);
    }

    private async Task RunAsync(ConnectionContext connection, UpgradeRequest request, string? chosen)
    {
        var settings = context.Options.WebSocket;
        var deflate = settings.Compression ? PerMessageDeflate.Negotiate(request.Extensions) : null;
        var response = new StringBuilder("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n")
            .Append("Sec-WebSocket-Accept: ").Append(AcceptKey(request.Key)).Append("\r\n");
        if (chosen is not null)
        {
            response.Append("Sec-WebSocket-Protocol: ").Append(chosen).Append("\r\n");
        }

        if (deflate is not null)
        {
            response.Append("Sec-WebSocket-Extensions: ").Append(deflate.Value.Response).Append("\r\n");
        }

        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(response.Append("\r\n").ToString()), connection.ConnectionClosed);

        await using var stream = new DuplexPipeStream(connection.Transport);
        using var socket = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions
        {
            IsServer = true,
            SubProtocol = chosen,
            KeepAliveInterval = TimeSpan.Zero, // STOMP heart-beats keep the connection alive
            DangerousDeflateOptions = deflate?.Options,
        });
        var remote = connection.RemoteEndPoint?.ToString() ?? "unknown";
        await endpoint.RunSessionAsync(socket, remote, chosen, WebSocketEndpoint.BearerToken(request.Authorization, request.AccessToken), connection.ConnectionClosed);

        // Aborted (a peer that does not read its last frames, say): drop the connection rather than wait on it.
        if (socket.State == WebSocketState.Aborted)
        {
            connection.Abort();
        }
    }

    // Everything WebSocketEndpoint would check before accepting; any "no" leaves the request to it, to refuse.
    private bool Accepts(IPAddress? address, UpgradeRequest request, out string? chosen)
    {
        chosen = null;
        if (!endpoint.IsOriginAllowed(request.Origin ?? "")
            || context.Registry.IsShuttingDown
            || !WebSocketEndpoint.TryChooseSubProtocol(request.SubProtocols, out chosen))
        {
            return false;
        }

        return context.Registry.TryAcquireConnection(address, context.Options.Limits, out _);
    }

    private static string AcceptKey(string key)
    {
#pragma warning disable CA5350 // RFC 6455 defines the accept key with SHA-1; it is not used for security.
        return Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
#pragma warning restore CA5350
    }

    private sealed record UpgradeRequest(string Key, List<string> SubProtocols, string? Extensions, string? Origin, string? Authorization, string? AccessToken);

    // A GET of the STOMP path over HTTP/1.1 with the RFC 6455 headers and no body, whole in the first read.
    private bool TryParseUpgrade(ReadOnlySequence<byte> buffer, out UpgradeRequest request, out long headLength)
    {
        request = null!;
        headLength = 0;
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> head, HeadEnd) || head.Length > MaxRequestHeadBytes)
        {
            return false;
        }

        headLength = head.Length + HeadEnd.Length;
        var lines = Encoding.Latin1.GetString(head).Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || requestLine[0] != "GET" || requestLine[2] != "HTTP/1.1")
        {
            return false;
        }

        var target = requestLine[1];
        var queryAt = target.IndexOf('?', StringComparison.Ordinal);
        var path = queryAt < 0 ? target : target[..queryAt];
        if (!string.Equals(path, context.Options.WebSocket.Path, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        string? key = null, version = null, upgrade = null, connectionHeader = null, extensions = null, origin = null, authorization = null;
        var subProtocols = new List<string>();
        for (var i = 1; i < lines.Length; i++)
        {
            var colon = lines[i].IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                return false;
            }

            var name = lines[i][..colon].Trim();
            var value = lines[i][(colon + 1)..].Trim();
            switch (name.ToUpperInvariant())
            {
                case "SEC-WEBSOCKET-KEY": key = key is null ? value : null; break;
                case "SEC-WEBSOCKET-VERSION": version = value; break;
                case "UPGRADE": upgrade = value; break;
                case "CONNECTION": connectionHeader = value; break;
                case "SEC-WEBSOCKET-PROTOCOL":
                    subProtocols.AddRange(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
                    break;
                case "SEC-WEBSOCKET-EXTENSIONS": extensions = extensions is null ? value : extensions + ", " + value; break;
                case "ORIGIN": origin = value; break;
                case "AUTHORIZATION": authorization = value; break;
                case "CONTENT-LENGTH" or "TRANSFER-ENCODING": return false; // a body: not a plain upgrade
            }
        }

        if (key is null || version != "13" || !string.Equals(upgrade, "websocket", StringComparison.OrdinalIgnoreCase)
            || connectionHeader is null
            || !connectionHeader.Split(',', StringSplitOptions.TrimEntries).Contains("upgrade", StringComparer.OrdinalIgnoreCase))
        {
            return false;
        }

        string? accessToken = null;
        if (queryAt >= 0 && QueryHelpers.ParseQuery(target[queryAt..]).TryGetValue("access_token", out var token))
        {
            accessToken = token.FirstOrDefault();
        }

        request = new UpgradeRequest(key, subProtocols, extensions, origin, authorization, accessToken);
        return true;
    }

    /// <summary>
    /// A connection's pipe as the stream <see cref="WebSocket.CreateFromStream(Stream, WebSocketCreationOptions)"/> wants.
    /// Disposing it (what <see cref="WebSocket.Abort"/> does) wakes a read or write waiting on the pipe.
    /// </summary>
    private sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
    {
        private readonly Stream _input = pipe.Input.AsStream(leaveOpen: true);
        private readonly Stream _output = pipe.Output.AsStream(leaveOpen: true);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _input.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _input.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _output.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _output.WriteAsync(buffer, offset, count, cancellationToken);

        public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);

        public override void Flush() => throw new NotSupportedException("synchronous I/O");

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("synchronous I/O");

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("synchronous I/O");

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                pipe.Input.CancelPendingRead();
                pipe.Output.CancelPendingFlush();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>RFC 7692 permessage-deflate: the first acceptable offer, answered with no server context takeover.</summary>
internal static class PerMessageDeflate
{
    public static (WebSocketDeflateOptions Options, string Response)? Negotiate(string? extensions)
    {
        if (extensions is null)
        {
            return null;
        }

        foreach (var offer in extensions.Split(',', StringSplitOptions.TrimEntries))
        {
            var parameters = offer.Split(';', StringSplitOptions.TrimEntries);
            if (parameters[0] != "permessage-deflate")
            {
                continue;
            }

            // A compressor kept between messages holds ~256 KiB of zlib state for the life of the connection.
            var options = new WebSocketDeflateOptions { ServerContextTakeover = false };
            var response = new StringBuilder("permessage-deflate; server_no_context_takeover");
            var acceptable = true;
            foreach (var parameter in parameters.Skip(1))
            {
                var equals = parameter.IndexOf('=', StringComparison.Ordinal);
                var name = equals < 0 ? parameter : parameter[..equals].Trim();
                var value = equals < 0 ? null : parameter[(equals + 1)..].Trim().Trim('"');
                int bits;
                switch (name)
                {
                    case "server_no_context_takeover" when value is null:
                        break;
                    case "client_no_context_takeover" when value is null:
                        options.ClientContextTakeover = false;
                        response.Append("; client_no_context_takeover");
                        break;
                    case "server_max_window_bits" when int.TryParse(value, out bits) && bits is >= 9 and <= 15:
                        options.ServerMaxWindowBits = bits;
                        response.Append("; server_max_window_bits=").Append(bits);
                        break;
                    case "client_max_window_bits" when value is null:
                        break; // the client may use any size; not answering means 15
                    case "client_max_window_bits" when int.TryParse(value, out bits) && bits is >= 9 and <= 15:
                        options.ClientMaxWindowBits = bits;
                        response.Append("; client_max_window_bits=").Append(bits);
                        break;
                    default:
                        acceptable = false;
                        break;
                }
            }

            if (acceptable)
            {
                return (options, response.ToString());
            }
        }

        return null;
    }
}
