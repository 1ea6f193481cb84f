using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Unicode;

namespace Broker.Client.Internal;

/// <summary>Bytes to and from the broker over TCP, TLS or WebSocket; each <see cref="SendAsync"/> is one frame (one WebSocket message).</summary>
internal abstract class ClientTransport : IAsyncDisposable
{
    public abstract PipeReader Input { get; }

    public abstract ValueTask SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();

    public static async Task<ClientTransport> ConnectAsync(StompClientOptions options, CancellationToken cancellationToken)
    {
        var uri = options.Uri;
        switch (uri.Scheme)
        {
            case "ws" or "wss":
                return await WebSocketClientTransport.OpenAsync(options, cancellationToken);
            case "tcp" or "stomp":
                return await StreamClientTransport.ConnectAsync(uri.Host, uri.IsDefaultPort ? 61613 : uri.Port, tls: false, options, cancellationToken);
            case "ssl" or "tls" or "stomp+ssl":
                return await StreamClientTransport.ConnectAsync(uri.Host, uri.IsDefaultPort ? 61614 : uri.Port, tls: true, options, cancellationToken);
            default:
                throw new ArgumentException($"Unsupported scheme '{uri.Scheme}': use ws://, wss://, tcp:// or ssl://.", nameof(options));
        }
    }
}

internal sealed class StreamClientTransport(Stream stream) : ClientTransport
{
    private readonly PipeReader _input = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));

    public override PipeReader Input => _input;

    public static async Task<ClientTransport> ConnectAsync(string host, int port, bool tls, StompClientOptions options, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cancellationToken);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (tls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false, options.RemoteCertificateValidation);
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = host }, cancellationToken);
                stream = ssl;
            }

            return new StreamClientTransport(stream);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(frame, cancellationToken);
        await stream.FlushAsync(cancellationToken);
    }

    // Aborts a pending read; the connection's reader, the only one using Input, completes it as it ends.
    public override ValueTask DisposeAsync() => stream.DisposeAsync();
}

internal sealed class WebSocketClientTransport : ClientTransport
{
    private readonly ClientWebSocket _socket;
    private readonly PipeReader _input;

    private WebSocketClientTransport(ClientWebSocket socket)
    {
        _socket = socket;
        // The socket is read only when the parser asks for more, as over TCP: when a subscriber's buffer is full and the
        // reader waits, nothing more is read, and the broker's flow control holds the rest. (A pump into a Pipe would
        // read ahead into memory up to the Pipe's pause threshold instead.)
        _input = PipeReader.Create(new ReceiveStream(socket), new StreamPipeReaderOptions(leaveOpen: true));
    }

    public override PipeReader Input => _input;

    public static async Task<ClientTransport> OpenAsync(StompClientOptions options, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        foreach (var protocol in (string[])["v12.stomp", "v11.stomp", "v10.stomp"])
        {
            socket.Options.AddSubProtocol(protocol);
        }

        socket.Options.KeepAliveInterval = TimeSpan.Zero; // STOMP heart-beats do this
        if (options.RemoteCertificateValidation is { } validate)
        {
            socket.Options.RemoteCertificateValidationCallback = validate;
        }

        try
        {
            await socket.ConnectAsync(options.Uri, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new WebSocketClientTransport(socket);
    }

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        // Text when the frame is valid UTF-8 without NUL before its terminator, as browsers' clients send it.
        var span = frame.Span;
        var text = span.Length > 0 && span[..^1].IndexOf((byte)0) < 0 && Utf8.IsValid(span);
        await _socket.SendAsync(frame, text ? WebSocketMessageType.Text : WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }

        // Aborts a pending read; the connection's reader, the only one using Input, completes it as it ends.
        _socket.Dispose();
    }

    /// <summary>The payload of the WebSocket's messages, one after another, as a read-only stream that ends at the close.</summary>
    private sealed class ReceiveStream(WebSocket socket) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return 0;
                }

                if (result.Count > 0 || buffer.IsEmpty)
                {
                    return result.Count; // an empty message is not the end of the stream: read on
                }
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Flush()
        {
        }
    }
}
