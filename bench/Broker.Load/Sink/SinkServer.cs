using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Broker.Stomp;

namespace Broker.Load.Sink;

/// <summary>
/// The trivial sink: answers CONNECT with CONNECTED and any receipt request with a RECEIPT, and discards every SEND
/// nobody subscribed to. Its row in the comparison is what the machine and the tool can move with no broker work at
/// all. With relaying on, a SEND to a destination someone did subscribe to is relayed to each such subscription as a
/// MESSAGE, at once, from the read that brought it (no queue, no acknowledgements, no flow control): the latency rows'
/// floor, what a message's trip costs in the tool, the kernel and a pass through a process. TCP, and WebSocket at /ws
/// with a hand-made upgrade (no web server in the way).
/// </summary>
internal sealed class SinkServer
{
    private static readonly byte[] Connected = "CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:stompload-sink\n\n\0"u8.ToArray();

    // Subscriptions by destination; a copy-on-write array each, as subscribing is rare and relaying is per message.
    private readonly ConcurrentDictionary<string, Subscription[]> _subscriptions = new(StringComparer.Ordinal);

    // How many subscriptions are registered: a SEND looks its destination up only while there are any, so the p2p
    // ceiling (no consumers) pays for no string or look-up per message.
    private int _subscriptionCount;
    private readonly bool _relay;
    private long _messageIds;

    private SinkServer(bool relay) => _relay = relay;

    public static async Task RunAsync(int tcpPort, int? wsPort, bool relay, CancellationToken cancellationToken)
    {
        var sink = new SinkServer(relay);
        var listeners = new List<Task> { sink.ListenAsync(tcpPort, webSocket: false, cancellationToken) };
        if (wsPort is { } port)
        {
            listeners.Add(sink.ListenAsync(port, webSocket: true, cancellationToken));
        }

        Console.Error.WriteLine($"sink: STOMP on tcp://127.0.0.1:{tcpPort}" + (wsPort is null ? "" : $" and ws://127.0.0.1:{wsPort}/ws") + (relay ? ", relaying to subscribers" : "") + "; Ctrl+C stops");
        try
        {
            await Task.WhenAll(listeners);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task ListenAsync(int port, bool webSocket, CancellationToken cancellationToken)
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

    private async Task ServeAsync(Socket socket, bool webSocket, CancellationToken cancellationToken)
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

    // Reads frames and answers the ones that want an answer, batching all answers of one read into one send, and all
    // relayed messages of one read into one send per subscriber.
    private async Task ServeFramesAsync(
        Func<Memory<byte>, CancellationToken, ValueTask<int>> receive,
        Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> send,
        CancellationToken cancellationToken)
    {
        var self = new Peer(send);
        List<(string Destination, Subscription Subscription)>? own = null;
        Dictionary<Peer, ArrayBufferWriter<byte>>? relayed = null;
        try
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
                        case StompCommand.Subscribe when _relay && frame.Headers.GetString(StompHeaderNames.Destination) is { } destination:
                            var subscription = new Subscription(self, frame.Headers.GetString(StompHeaderNames.Id) ?? "0");
                            _subscriptions.AddOrUpdate(destination, [subscription], (_, all) => [.. all, subscription]);
                            Interlocked.Increment(ref _subscriptionCount);
                            (own ??= []).Add((destination, subscription));
                            goto default;
                        case StompCommand.Send when Volatile.Read(ref _subscriptionCount) > 0
                            && frame.Headers.GetString(StompHeaderNames.Destination) is { } destination
                            && _subscriptions.TryGetValue(destination, out var subscribers):
                            foreach (var subscriber in subscribers)
                            {
                                relayed ??= [];
                                if (!relayed.TryGetValue(subscriber.Peer, out var messages))
                                {
                                    relayed[subscriber.Peer] = messages = new ArrayBufferWriter<byte>(256);
                                }

                                WriteMessage(messages, frame, destination, subscriber.Id, Interlocked.Increment(ref _messageIds));
                            }

                            goto default;
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
                    await self.SendAsync(replies.WrittenMemory, cancellationToken);
                    replies.ResetWrittenCount();
                }

                foreach (var (peer, messages) in relayed ?? [])
                {
                    if (messages.WrittenCount > 0)
                    {
                        await peer.TrySendAsync(messages.WrittenMemory, cancellationToken);
                        messages.ResetWrittenCount();
                    }
                }

                // Buffers are kept for the next read, but not for every subscriber that ever came and went.
                if (relayed?.Count > 16)
                {
                    relayed.Clear();
                }

                if (disconnect)
                {
                    return;
                }
            }
        }
        finally
        {
            foreach (var (destination, subscription) in own ?? [])
            {
                Unsubscribe(destination, subscription);
            }
        }
    }

    private void Unsubscribe(string destination, Subscription subscription)
    {
        while (_subscriptions.TryGetValue(destination, out var all))
        {
            var rest = Array.FindAll(all, s => !ReferenceEquals(s, subscription));
            if (rest.Length == 0 ? _subscriptions.TryRemove(new KeyValuePair<string, Subscription[]>(destination, all)) : _subscriptions.TryUpdate(destination, rest, all))
            {
                Interlocked.Decrement(ref _subscriptionCount);
                return;
            }
        }
    }

    // MESSAGE with the SEND's own headers (the tool's producer, sequence and timestamp among them) and body.
    private static void WriteMessage(ArrayBufferWriter<byte> output, StompFrame send, string destination, string subscriptionId, long messageId)
    {
        StompWriter.WriteCommand(output, StompCommand.Message);
        StompWriter.WriteHeader(output, StompCommand.Message, StompVersion.V1_2, "subscription", subscriptionId);
        StompWriter.WriteHeader(output, StompHeaderNames.MessageId, messageId);
        StompWriter.WriteHeader(output, StompCommand.Message, StompVersion.V1_2, "destination", destination);
        for (var i = 0; i < send.Headers.Count; i++)
        {
            var name = send.Headers.GetName(i);
            if (!name.SequenceEqual(StompHeaderNames.Destination) && !name.SequenceEqual(StompHeaderNames.Receipt) && !name.SequenceEqual(StompHeaderNames.ContentLength))
            {
                StompWriter.WriteHeader(output, StompCommand.Message, StompVersion.V1_2, name, send.Headers.GetValue(i));
            }
        }

        StompWriter.WriteBody(output, StompCommand.Message, send.Body);
    }

    // One connection's sending side: its own replies and the messages relayed to it from other connections' reads
    // take turns.
    private sealed class Peer(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> send)
    {
        private readonly SemaphoreSlim _turn = new(1, 1);

        public async ValueTask SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
        {
            await _turn.WaitAsync(cancellationToken);
            try
            {
                await send(bytes, cancellationToken);
            }
            finally
            {
                _turn.Release();
            }
        }

        // A subscriber that went away must not end the sender's connection.
        public async ValueTask TrySendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
        {
            try
            {
                await SendAsync(bytes, cancellationToken);
            }
            catch (Exception ex) when (ex is IOException or SocketException or WebSocketException or ObjectDisposedException)
            {
            }
        }
    }

    private sealed record Subscription(Peer Peer, string Id);

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
