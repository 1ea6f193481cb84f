using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Broker.Stomp;

namespace Broker.Tests.LoadTool;

/// <summary>How <see cref="MisbehavingBroker"/> gets delivery wrong.</summary>
internal enum DeliveryFault
{
    /// <summary>Every SEND is delivered twice, the copies one after the other.</summary>
    DeliverTwice,

    /// <summary>Of the SENDs read together, each pair is delivered the other way round (1 0 3 2 …).</summary>
    SwapAdjacent,
}

/// <summary>
/// A broker over TCP just good enough for the load tool (CONNECT, SUBSCRIBE, SEND, receipts), built on the project's
/// codec, that breaks delivery on purpose; messages go round-robin to the subscribers, a read's worth at a time.
/// </summary>
internal sealed class MisbehavingBroker : IAsyncDisposable
{
    private static readonly byte[] Connected = "CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:misbehaving\n\n\0"u8.ToArray();

    private readonly DeliveryFault _fault;
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Peer, byte> _peers = new();
    private readonly List<Peer> _subscribers = [];
    private readonly Task _accepting;
    private long _messageIds;
    private int _nextSubscriber;

    private MisbehavingBroker(DeliveryFault fault)
    {
        _fault = fault;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        Url = $"tcp://127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}";
        _accepting = AcceptAsync();
    }

    public string Url { get; }

    public static MisbehavingBroker Start(DeliveryFault fault) => new(fault);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        foreach (var peer in _peers.Keys)
        {
            peer.Dispose();
        }

        await _accepting;
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var peer = new Peer(await _listener.AcceptAsync(_stop.Token));
                _peers.TryAdd(peer, 0);
                _ = Task.Run(() => ServeAsync(peer));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync(Peer peer)
    {
        using var parser = new StompParser();
        var buffer = new byte[256 * 1024];
        var filled = 0;
        var replies = new ArrayBufferWriter<byte>();
        var messages = new List<byte[]>();
        try
        {
            while (true)
            {
                if (filled == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                var read = await peer.Socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    return;
                }

                filled += read;
                var input = new ReadOnlySequence<byte>(buffer, 0, filled);
                var subscriber = NextSubscriber();
                while (parser.TryParse(ref input, out var frame))
                {
                    switch (frame.Command)
                    {
                        case StompCommand.Connect or StompCommand.Stomp:
                            replies.Write(Connected);
                            break;
                        case StompCommand.Subscribe:
                            peer.SubscriptionId = frame.Headers.GetString("id") ?? "";
                            lock (_subscribers)
                            {
                                _subscribers.Add(peer);
                            }

                            break;
                        case StompCommand.Send when subscriber is not null:
                            messages.Add(ToMessage(frame, subscriber.SubscriptionId));
                            break;
                    }

                    if (frame.Headers.TryGetValue(StompHeaderNames.Receipt, out var receipt))
                    {
                        StompWriter.WriteCommand(replies, StompCommand.Receipt);
                        StompWriter.WriteHeader(replies, StompCommand.Receipt, StompVersion.V1_2, StompHeaderNames.ReceiptId, receipt);
                        StompWriter.WriteEnd(replies);
                    }
                }

                var consumed = filled - (int)input.Length;
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;
                if (messages.Count > 0)
                {
                    await subscriber!.SendAsync(Misdeliver(messages), _stop.Token);
                    messages.Clear();
                }

                if (replies.WrittenCount > 0)
                {
                    await peer.SendAsync(replies.WrittenMemory.ToArray(), _stop.Token);
                    replies.ResetWrittenCount();
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException or StompProtocolException)
        {
        }
        finally
        {
            _peers.TryRemove(peer, out _);
            lock (_subscribers)
            {
                _subscribers.Remove(peer);
            }

            peer.Dispose();
        }
    }

    private Peer? NextSubscriber()
    {
        lock (_subscribers)
        {
            return _subscribers.Count == 0 ? null : _subscribers[_nextSubscriber++ % _subscribers.Count];
        }
    }

    private byte[] Misdeliver(List<byte[]> messages)
    {
        var output = new ArrayBufferWriter<byte>();
        for (var i = 0; i < messages.Count; i++)
        {
            switch (_fault)
            {
                case DeliveryFault.DeliverTwice:
                    output.Write(messages[i]);
                    output.Write(messages[i]);
                    break;
                case DeliveryFault.SwapAdjacent:
                    output.Write(messages[i % 2 == 0 && i + 1 < messages.Count ? i + 1 : i % 2 == 1 ? i - 1 : i]);
                    break;
            }
        }

        return output.WrittenSpan.ToArray();
    }

    // The SEND's own headers (the tool's producer and sequence numbers among them) and body, as a MESSAGE.
    private byte[] ToMessage(in StompFrame send, string subscriptionId)
    {
        var output = new ArrayBufferWriter<byte>();
        StompWriter.WriteCommand(output, StompCommand.Message);
        StompWriter.WriteHeader(output, StompCommand.Message, StompVersion.V1_2, "subscription", subscriptionId);
        StompWriter.WriteHeader(output, "message-id"u8, Interlocked.Increment(ref _messageIds));
        for (var i = 0; i < send.Headers.Count; i++)
        {
            var name = send.Headers.GetName(i);
            if (!name.SequenceEqual(StompHeaderNames.Receipt) && !name.SequenceEqual(StompHeaderNames.ContentLength))
            {
                StompWriter.WriteHeader(output, StompCommand.Message, StompVersion.V1_2, name, send.Headers.GetValue(i));
            }
        }

        StompWriter.WriteBody(output, StompCommand.Message, send.Body);
        return output.WrittenSpan.ToArray();
    }

    private sealed class Peer(Socket socket) : IDisposable
    {
        private readonly SemaphoreSlim _sending = new(1, 1);

        public Socket Socket { get; } = socket;

        public string SubscriptionId { get; set; } = "";

        public async Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            await _sending.WaitAsync(cancellationToken);
            try
            {
                while (!data.IsEmpty)
                {
                    data = data[await Socket.SendAsync(data, SocketFlags.None, cancellationToken)..];
                }
            }
            finally
            {
                _sending.Release();
            }
        }

        public void Dispose()
        {
            Socket.Dispose();
            _sending.Dispose();
        }
    }
}
