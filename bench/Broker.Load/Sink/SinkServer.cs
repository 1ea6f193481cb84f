using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Broker.Stomp;

namespace Broker.Load.Sink;

/// <summary>
/// The trivial sink: answers CONNECT with CONNECTED and any receipt request with a RECEIPT, discards everything else.
/// Its row in the comparison is what the machine and the tool can move with no broker work at all. TCP, and WebSocket
/// at /ws with a hand-made upgrade (no web server in the way).
/// </summary>
internal sealed class SinkServer
{
    private static readonly byte[] Connected = "CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:stompload-sink\n\n\0"u8.ToArray();

    public static async Task RunAsync(int tcpPort, int? wsPort, CancellationToken cancellationToken)
    {
        var listeners = new List<Task> { ListenAsync(tcpPort, webSocket: false, cancellationToken) };
        if (wsPort is { } port)
        {
            listeners.Add(ListenAsync(port, webSocket: true, cancellationToken));
        }

        Console.Error.WriteLine($"sink: STOMP on tcp://127.0.0.1:{tcpPort}" + (wsPort is null ? "" : $" and ws://127.0.0.1:{wsPort}/ws") + "; Ctrl+C stops");
        try
        {
            await Task.WhenAll(listeners);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private static async Task ListenAsync(int port, bool webSocket, CancellationToken cancellationToken)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
        listener.Listen(4096);
        while (!cancellationToken.IsCancellationRequested)
        {
            var socket = await listener.AcceptAsync(cancellationToken);
            socket.NoDelay = true;
            _ = Task.Run(() => ServeAsync(socket, webSocket, cancellationToken), CancellationToken.None);
        }
    }

    private static async Task ServeAsync(Socket socket, bool webSocket, CancellationToken cancellationToken)
    {
        using var _ = socket;
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        try
        {
            if (webSocket)
            {
                var subProtocol = await UpgradeAsync(stream, cancellationToken);
                if (subProtocol is null)
                {
                    return;
                }

                using var ws = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = true, SubProtocol = subProtocol, KeepAliveInterval = TimeSpan.Zero });
                await ServeFramesAsync(
                    async (buffer, token) =>
                    {
                        while (true)
                        {
                            var result = await ws.ReceiveAsync(buffer, token);
                            if (result.MessageType == WebSocketMessageType.Close)
                            {
                                return 0;
                            }

                            if (result.Count > 0)
                            {
                                return result.Count;
                            }
                        }
                    },
                    (frame, token) => ws.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, token),
                    cancellationToken);
            }
            else
            {
                await ServeFramesAsync(
                    (buffer, token) => socket.ReceiveAsync(buffer, SocketFlags.None, token),
                    async (frame, token) =>
                    {
                        while (!frame.IsEmpty)
                        {
                            frame = frame[await socket.SendAsync(frame, SocketFlags.None, token)..];
                        }
                    },
                    cancellationToken);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or WebSocketException or OperationCanceledException)
        {
            // A client that goes away is the normal end.
        }
    }

    // Reads frames and answers the ones that want an answer, batching all answers of one read into one send.
    private static async Task ServeFramesAsync(
        Func<Memory<byte>, CancellationToken, ValueTask<int>> receive,
        Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> send,
        CancellationToken cancellationToken)
    {
        using var parser = new StompParser(new StompParserLimits { MaxFrameBytes = 64 * 1024 * 1024, MaxBodyBytes = 64 * 1024 * 1024 });
        // Small until a burst needs more: the sink's own memory per idle connection is a row of the comparison too.
        var buffer = new byte[4096];
        var replies = new ArrayBufferWriter<byte>(256);
        var filled = 0;
        while (true)
        {
            if (filled == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }

            var read = await receive(buffer.AsMemory(filled), cancellationToken);
            if (read <= 0)
            {
                return;
            }

            filled += read;
            var input = new ReadOnlySequence<byte>(buffer, 0, filled);
            var disconnect = false;
            while (parser.TryParse(ref input, out var frame))
            {
                switch (frame.Command)
                {
                    case StompCommand.Connect or StompCommand.Stomp:
                        replies.Write(Connected);
                        break;
                    case StompCommand.HeartBeat:
                        break;
                    default:
                        if (frame.Headers.TryGetValue(StompHeaderNames.Receipt, out var receipt))
                        {
                            StompWriter.WriteCommand(replies, StompCommand.Receipt);
                            StompWriter.WriteHeader(replies, StompCommand.Receipt, StompVersion.V1_2, StompHeaderNames.ReceiptId, receipt);
                            StompWriter.WriteEnd(replies);
                        }

                        disconnect |= frame.Command == StompCommand.Disconnect;
                        break;
                }
            }

            var consumed = filled - (int)input.Length;
            buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
            filled -= consumed;
            if (replies.WrittenCount > 0)
            {
                await send(replies.WrittenMemory, cancellationToken);
                replies.ResetWrittenCount();
            }

            if (disconnect)
            {
                return;
            }
        }
    }

    // The server half of RFC 6455's opening handshake: enough for stomp.js, ClientWebSocket and this tool.
    private static async Task<string?> UpgradeAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var request = new StringBuilder();
        var one = new byte[1];
        while (!request.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0 || request.Length > 16 * 1024)
            {
                return null;
            }

            request.Append((char)one[0]);
        }

        string? key = null, protocols = null;
        foreach (var line in request.ToString().Split("\r\n"))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }

            var name = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase))
            {
                key = value;
            }
            else if (name.Equals("Sec-WebSocket-Protocol", StringComparison.OrdinalIgnoreCase))
            {
                protocols = value;
            }
        }

        if (key is null)
        {
            await stream.WriteAsync("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), cancellationToken);
            return null;
        }

#pragma warning disable CA5350 // RFC 6455 defines the accept key with SHA-1; it is not used for security here.
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
#pragma warning restore CA5350
        var chosen = protocols?.Split(',').Select(p => p.Trim()).FirstOrDefault(p => p is "v12.stomp" or "v11.stomp" or "v10.stomp") ?? "";
        var response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Accept: {accept}\r\n" + (chosen.Length > 0 ? $"Sec-WebSocket-Protocol: {chosen}\r\n" : "") + "\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(response), cancellationToken);
        return chosen;
    }
}
