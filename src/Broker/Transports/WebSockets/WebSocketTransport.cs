using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;
using Broker.Diagnostics;

namespace Broker.Transports.WebSockets;

/// <summary>
/// STOMP over RFC 6455 WebSocket framing, read from and written to the connection's own pipe: no WebSocket object,
/// no stream wrappers, no second pipe and no receive loop, so an idle connection costs about what a TCP one does.
/// Message payloads, text or binary, are unmasked into the <see cref="PayloadReader"/> the session reads, when it
/// reads, and parsed as a byte stream, so a frame split over several messages and several frames in one message both
/// work. Each outgoing frame is one message, text when it is valid UTF-8 without NUL in its body, binary otherwise;
/// all messages of one flush go out in one write.
/// <para>
/// Reading answers pings and notes the peer's close, and fails the connection (close 1002 or 1007, then the end of
/// input) on anything RFC 6455 forbids: an unmasked frame, reserved bits or opcodes, a control frame over 125 bytes or
/// fragmented, a continuation with no message begun, invalid UTF-8 in a text message or a close reason.
/// permessage-deflate (RFC 7692) is done one message at a time; see <see cref="MessageInflater"/>.
/// </para>
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Reliability", "CA1001", Justification = "The SemaphoreSlim's wait handle is never asked for, so it has nothing to dispose.")]
internal sealed class WebSocketTransport : StompTransport
{
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    // Output staging size: most bursts fit; a bigger one grows the buffer.
    private const int OutputBufferSize = 4 * 1024;

    // Payload decoded by one read before the session parses it (and the frame limit applies).
    private const int DecodedPerRead = 64 * 1024;

    private const byte Fin = 0x80;
    private const byte Rsv1 = 0x40;
    private const int MaxControlPayload = 125;

    private const byte OpContinuation = 0x0;
    private const byte OpText = 0x1;
    private const byte OpBinary = 0x2;
    private const byte OpClose = 0x8;
    private const byte OpPing = 0x9;
    private const byte OpPong = 0xA;

    private readonly IDuplexPipe _connection;
    private readonly object _owner;
    private readonly Action<object> _abort;
    private readonly System.Net.EndPoint? _remote;
    private readonly ILogger _logger;
    private readonly PayloadReader _payload;
    private readonly PooledBufferWriter _output = new(OutputBufferSize);
    private readonly List<int> _frameEnds = [];
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly int? _deflateWindowBits;
    private readonly int _compressionThreshold;
    private bool _upgradeResponsePending = true; // sent by the first read, before anything is awaited from the peer
    private volatile bool _closeSent;
    private byte[]? _peerClose; // the peer's close payload, once it has sent one

    // Receive state, touched only by reads (the session's, then the close's).
    private long _frameRemaining;
    private uint _mask;
    private int _maskOffset;
    private bool _frameFin;
    private bool _inFrame;
    private byte _messageOpcode; // text or binary while a message is under way, else 0
    private MessageInflater? _inflater; // while a compressed message is under way
    private Utf8Tail _utf8;
    private bool _discarding; // the session stopped reading: payload is dropped until the peer's close arrives

    /// <param name="connection">The connection's bytes, after the upgrade response.</param>
    /// <param name="owner">What <paramref name="abort"/> is called with: the connection, or the request it was upgraded from.</param>
    /// <param name="abort">Cuts the connection at once; static, so that no delegate is made per connection.</param>
    /// <param name="remote">The peer, for logs.</param>
    /// <param name="deflateWindowBits">The negotiated permessage-deflate window of the server, or null: no compression.</param>
    /// <param name="compressionThreshold">Messages smaller than this go uncompressed.</param>
    /// <param name="logger">Where a failed connection is logged.</param>
    public WebSocketTransport(
        IDuplexPipe connection, object owner, Action<object> abort, System.Net.EndPoint? remote, int? deflateWindowBits, int compressionThreshold, ILogger logger)
    {
        _connection = connection;
        _owner = owner;
        _abort = abort;
        _logger = logger;
        _remote = remote;
        _deflateWindowBits = deflateWindowBits;
        _compressionThreshold = compressionThreshold;
        _payload = new PayloadReader(this);
    }

    // What decoding a read of the connection came to (Decode, TryReadHeader, then Take for a whole read).
    private enum DecodeOutcome
    {
        NeedMore, // a frame header or control frame is not all there: read again
        PayloadFollows, // a data frame's header was read (TryReadHeader)
        ReadFull, // as much payload decoded as one read takes; the rest of the buffer waits
        Data, // the payload reader has bytes the session has not examined (Take)
        End, // the connection's input ended with nothing more to decode (Take)
        Canceled, // the read was cancelled (Take)
        Skip, // a pong, ignored
        Ping,
        Close,
        Fail,
    }

    public override string Name => "ws";

    /// <summary>Set from the chosen subprotocol: v10.stomp and v11.stomp name the STOMP version the client speaks.</summary>
    public override Stomp.StompVersion? MaxVersion => SubProtocol switch
    {
        "v10.stomp" => Stomp.StompVersion.V1_0,
        "v11.stomp" => Stomp.StompVersion.V1_1,
        _ => null,
    };

    /// <summary>The WebSocket subprotocol agreed in the handshake, if any.</summary>
    public string? SubProtocol { get; init; }

    /// <summary>Made when asked (for logs), not kept: an idle connection should cost little.</summary>
    public override string RemoteAddress => _remote?.ToString() ?? "unknown";

    public override PipeReader Input => _payload;

    public override IBufferWriter<byte> Output => _output;

    public override void EndFrame() => _frameEnds.Add(_output.WrittenCount);

    public override ValueTask<bool> FlushAsync(CancellationToken cancellationToken) => SendAsync(opcode: null, default, cancellationToken);

    public override void Abort()
    {
        _connection.Output.CancelPendingFlush();
        _abort(_owner);
    }

    public override async ValueTask CloseAsync(CloseReason reason, CancellationToken cancellationToken)
    {
        var (status, description) = reason switch
        {
            CloseReason.Disconnect or CloseReason.PeerClosed => (WebSocketCloseCodes.NormalClosure, "bye"),
            CloseReason.ProtocolError => (WebSocketCloseCodes.ProtocolError, "STOMP protocol error"),
            CloseReason.Policy => (WebSocketCloseCodes.PolicyViolation, "policy violation"),
            CloseReason.TooBig => (WebSocketCloseCodes.MessageTooBig, "frame too large"),
            _ => (WebSocketCloseCodes.EndpointUnavailable, "server shutting down"),
        };

        if (_peerClose is { } peerClose)
        {
            // Echo the peer's status code; an empty close is answered with an empty one.
            await SendAsync(OpClose, peerClose.AsMemory(0, Math.Min(peerClose.Length, 2)), cancellationToken);
        }
        else
        {
            await SendCloseAsync(status, description, cancellationToken);
        }

        // The session reads no more (CloseAsync comes after its last read): let the client answer the close so the
        // handshake completes, dropping whatever it still sends before its close.
        _discarding = true;
        _payload.Complete();
        if (!_payload.IsEnded)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(CloseHandshakeTimeout);
            while (!_payload.IsEnded && !timeout.IsCancellationRequested)
            {
                await ReceiveAsync(timeout.Token); // a cancelled read (the session's last CancelPendingRead) is read again
            }

            if (timeout.IsCancellationRequested)
            {
                _abort(_owner);
            }
        }

        ReturnInflater();
    }

    private void DiscardStaged()
    {
        _frameEnds.Clear();
        _output.Reset();
    }

    private void WriteMessage(PipeWriter output, ReadOnlySpan<byte> frame)
    {
        var opcode = frame[..^1].IndexOf((byte)0) < 0 && Utf8.IsValid(frame) ? OpText : OpBinary;
        if (_deflateWindowBits is { } windowBits && frame.Length >= _compressionThreshold)
        {
            var compressed = MessageDeflater.Compress(frame, windowBits, out var length);
            if (compressed is not null)
            {
                WriteHeader(output, (byte)(Fin | Rsv1 | opcode), length);
                output.Write(compressed.AsSpan(0, length));
                ArrayPool<byte>.Shared.Return(compressed);
                return;
            }
        }

        WriteHeader(output, (byte)(Fin | opcode), frame.Length);
        output.Write(frame);
    }

    // Server frames are never masked: the header is the first byte and the shortest length encoding.
    private static void WriteHeader(PipeWriter output, byte first, int length)
    {
        var header = output.GetSpan(10);
        header[0] = first;
        if (length < 126)
        {
            header[1] = (byte)length;
            output.Advance(2);
        }
        else if (length <= ushort.MaxValue)
        {
            header[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)length);
            output.Advance(4);
        }
        else
        {
            header[1] = 127;
            BinaryPrimitives.WriteUInt64BigEndian(header[2..], (ulong)length);
            output.Advance(10);
        }
    }

    // The one place that writes to the connection, under the send lock: the session's staged frames (opcode null), or
    // a control frame from the receive loop or the close. Returns false when the peer is gone or a close went first.
    private async ValueTask<bool> SendAsync(byte? opcode, ReadOnlyMemory<byte> control, CancellationToken cancellationToken)
    {
        try
        {
            await _sendLock.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            if (opcode is null)
            {
                DiscardStaged();
            }

            return false;
        }

        try
        {
            if (_closeSent)
            {
                return false; // nothing may follow a close frame
            }

            var output = _connection.Output;
            if (opcode is { } controlOpcode)
            {
                _closeSent |= controlOpcode == OpClose;
                WriteHeader(output, (byte)(Fin | controlOpcode), control.Length);
                output.Write(control.Span);
            }
            else
            {
                var start = 0;
                foreach (var end in _frameEnds)
                {
                    WriteMessage(output, _output.WrittenMemory.Span[start..end]);
                    start = end;
                }
            }

            var result = await output.FlushAsync(cancellationToken);
            return !result.IsCompleted && !result.IsCanceled;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException or ObjectDisposedException
                                       or Microsoft.AspNetCore.Connections.ConnectionResetException)
        {
            return false;
        }
        finally
        {
            if (opcode is null)
            {
                // The bytes are in the connection's pipe (or lost with it): the staging buffer goes back to the pool.
                DiscardStaged();
            }

            _sendLock.Release();
        }
    }

    private ValueTask<bool> SendCloseAsync(ushort status, string reason, CancellationToken cancellationToken)
    {
        var payload = new byte[2 + Encoding.UTF8.GetByteCount(reason)];
        BinaryPrimitives.WriteUInt16BigEndian(payload, status);
        Encoding.UTF8.GetBytes(reason, payload.AsSpan(2));
        return SendAsync(OpClose, payload, cancellationToken);
    }

    /// <summary>Wakes a pending read of the connection (the session's <see cref="PipeReader.CancelPendingRead"/>).</summary>
    internal void CancelPendingReceive() => _connection.Input.CancelPendingRead();

    /// <summary>
    /// Reads the connection until the payload reader has something the session has not examined, or the peer's data
    /// ends (its close frame, the socket's end, a violation), or the read is cancelled; answers pings on the way.
    /// The session's read when it has examined everything decoded, and the close's wait for the peer's close.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<ReadResult> ReceiveAsync(CancellationToken cancellationToken)
    {
        // Few locals live across the awaits here: an idle connection keeps this state machine waiting for the read.
        try
        {
            if (_upgradeResponsePending)
            {
                // The connection's output holds the 101 response (when the connection-level upgrade wrote one).
                _upgradeResponsePending = false;
                await SendAsync(opcode: null, default, CancellationToken.None);
            }

            while (true)
            {
                switch (Take(await _connection.Input.ReadAsync(cancellationToken), out var control, out var failure))
                {
                    case DecodeOutcome.Ping:
                        await SendAsync(OpPong, control ?? [], CancellationToken.None);
                        break;
                    case DecodeOutcome.Close:
                        // The session sees the end of input, sends what it still has (an ERROR, receipts), then
                        // answers the close in CloseAsync: RFC 6455 5.5.1 lets it finish its messages first.
                        _peerClose = control ?? [];
                        return EndOfInput();
                    case DecodeOutcome.Fail:
                        BrokerLog.WebSocketFailed(_logger, RemoteAddress, failure.Reason, failure.Code);
                        await SendCloseAsync(failure.Code, failure.Reason, CancellationToken.None);
                        return EndOfInput();
                    case DecodeOutcome.Canceled:
                        return _payload.Result(isCanceled: true);
                    case DecodeOutcome.Data:
                        return _payload.Result();
                    case DecodeOutcome.End:
                        return EndOfInput(); // the peer closed the socket without a close frame
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException
                                       or Microsoft.AspNetCore.Connections.ConnectionResetException)
        {
            // The peer went away or the server is stopping: the session sees the end of input.
            return EndOfInput();
        }
    }

    // Decodes what one read of the connection brought and gives the connection's pipe back what was taken. Returns
    // Data when the payload reader has bytes the session has not examined, End when the connection's input ended
    // with nothing more to decode, NeedMore to read again, or Canceled, Ping, Close or Fail.
    private DecodeOutcome Take(in ReadResult read, out byte[]? control, out (ushort Code, string Reason) failure)
    {
        var input = _connection.Input;
        control = null;
        failure = default;
        if (read.IsCanceled)
        {
            input.AdvanceTo(read.Buffer.Start);
            return DecodeOutcome.Canceled;
        }

        var buffer = read.Buffer;
        var outcome = DecodeOutcome.NeedMore;
        try
        {
            outcome = Decode(ref buffer, ref control, ref failure);
        }
        finally
        {
            // What is left after a full read or a control frame is looked at again at once; after NeedMore, only once
            // more bytes come.
            input.AdvanceTo(buffer.Start, outcome == DecodeOutcome.NeedMore ? buffer.End : buffer.Start);
        }

        if (outcome is DecodeOutcome.Ping or DecodeOutcome.Close or DecodeOutcome.Fail)
        {
            return outcome;
        }

        if (_payload.HasUnexamined)
        {
            return DecodeOutcome.Data;
        }

        return read.IsCompleted && outcome == DecodeOutcome.NeedMore ? DecodeOutcome.End : DecodeOutcome.NeedMore;
    }

    private ReadResult EndOfInput()
    {
        ReturnInflater();
        return _payload.End();
    }

    private void ReturnInflater()
    {
        _inflater?.Return();
        _inflater = null;
    }

    // Takes whole frame headers and as much payload as there is from the buffer, up to DecodedPerRead bytes of
    // payload. A control frame is taken only once it is whole (it is at most 127 + 4 bytes).
    private DecodeOutcome Decode(ref ReadOnlySequence<byte> buffer, ref byte[]? control, ref (ushort Code, string Reason) failure)
    {
        var payload = _payload;
        var decoded = 0;
        Span<byte> plain = stackalloc byte[1024];
        while (true)
        {
            if (!_inFrame)
            {
                var outcome = TryReadHeader(ref buffer, ref control, ref failure);
                if (outcome == DecodeOutcome.Skip)
                {
                    continue;
                }

                if (outcome != DecodeOutcome.PayloadFollows)
                {
                    return outcome; // NeedMore, or a control frame, or a failure
                }
            }

            while (_frameRemaining > 0)
            {
                if (buffer.IsEmpty)
                {
                    return DecodeOutcome.NeedMore;
                }

                if (decoded >= DecodedPerRead)
                {
                    return DecodeOutcome.ReadFull;
                }

                var chunk = buffer.First.Span;
                var length = (int)Math.Min(chunk.Length, _frameRemaining);
                if (_discarding)
                {
                    UnmaskPosition(length);
                }
                else if (_inflater is not null)
                {
                    length = Math.Min(length, plain.Length);
                    Unmask(chunk[..length], plain);
                    if (!Inflate(plain[..length], payload, ref decoded, ref failure))
                    {
                        return DecodeOutcome.Fail;
                    }
                }
                else
                {
                    var destination = payload.GetSpan(Math.Min(length, 4096));
                    length = Math.Min(length, destination.Length);
                    Unmask(chunk[..length], destination);
                    if (_messageOpcode == OpText && !_utf8.Validate(destination[..length]))
                    {
                        failure = (WebSocketCloseCodes.InvalidPayloadData, "a text message is not valid UTF-8");
                        return DecodeOutcome.Fail;
                    }

                    payload.Advance(length);
                    decoded += length;
                }

                buffer = buffer.Slice(length);
                _frameRemaining -= length;
            }

            _inFrame = false;
            if (_frameFin && !EndMessage(payload, ref decoded, ref failure))
            {
                return DecodeOutcome.Fail;
            }
        }
    }

    // Reads one frame header. Returns PayloadFollows when a data frame begins, NeedMore when the header (or a control
    // frame's payload) is not all there yet, Skip for a pong, and Ping, Close or Fail for a control frame or a
    // violation.
    private DecodeOutcome TryReadHeader(ref ReadOnlySequence<byte> buffer, ref byte[]? control, ref (ushort Code, string Reason) failure)
    {
        Span<byte> head = stackalloc byte[14];
        var available = (int)Math.Min(buffer.Length, head.Length);
        if (available < 2)
        {
            return DecodeOutcome.NeedMore;
        }

        buffer.Slice(0, available).CopyTo(head);
        var first = head[0];
        var second = head[1];
        var opcode = (byte)(first & 0x0F);
        var compressedFlag = (first & Rsv1) != 0;
        var headerLength = 2;
        long length = second & 0x7F;
        if (length == 126)
        {
            headerLength += 2;
        }
        else if (length == 127)
        {
            headerLength += 8;
        }

        headerLength += 4; // the mask; checked below
        if (available < headerLength)
        {
            return DecodeOutcome.NeedMore;
        }

        length = length switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(head[2..]),
            127 => (long)BinaryPrimitives.ReadUInt64BigEndian(head[2..]),
            _ => length,
        };

        string? violation = null;
        var isControl = opcode >= OpClose;
        if ((second & 0x80) == 0)
        {
            violation = "a client frame is not masked";
        }
        else if ((first & 0x30) != 0 || (compressedFlag && (_deflateWindowBits is null || isControl || opcode == OpContinuation)))
        {
            violation = "a reserved bit is set";
        }
        else if (opcode is not (OpContinuation or OpText or OpBinary or OpClose or OpPing or OpPong))
        {
            violation = $"opcode {opcode} is reserved";
        }
        else if (length < 0)
        {
            violation = "a frame length is over 2^63";
        }
        else if (isControl && ((first & Fin) == 0 || length > MaxControlPayload))
        {
            violation = "a control frame is fragmented or over 125 bytes";
        }
        else if (opcode == OpContinuation && _messageOpcode == 0)
        {
            violation = "a continuation frame with no message begun";
        }
        else if (opcode is OpText or OpBinary && _messageOpcode != 0)
        {
            violation = "a new message began before the last one ended";
        }

        if (violation is not null)
        {
            failure = (WebSocketCloseCodes.ProtocolError, violation);
            return DecodeOutcome.Fail;
        }

        _mask = MemoryMarshal.Read<uint>(head.Slice(headerLength - 4, 4));
        _maskOffset = 0;
        if (isControl)
        {
            if (buffer.Length < headerLength + length)
            {
                return DecodeOutcome.NeedMore; // taken when whole
            }

            var controlPayload = new byte[length];
            buffer.Slice(headerLength, length).CopyTo(controlPayload);
            buffer = buffer.Slice(headerLength + length);
            Unmask(controlPayload, controlPayload);
            switch (opcode)
            {
                case OpPing:
                    control = controlPayload;
                    return DecodeOutcome.Ping;
                case OpPong:
                    return DecodeOutcome.Skip; // an unsolicited pong needs no answer (RFC 6455 5.5.3)
                default:
                    control = controlPayload;
                    return CheckClose(controlPayload, ref failure);
            }
        }

        buffer = buffer.Slice(headerLength);
        _frameRemaining = length;
        _frameFin = (first & Fin) != 0;
        _inFrame = true;
        if (opcode != OpContinuation)
        {
            _messageOpcode = opcode;
            _utf8 = default;
            if (compressedFlag && !_discarding)
            {
                _inflater = MessageInflater.Rent();
            }
        }

        return DecodeOutcome.PayloadFollows;
    }

    private static DecodeOutcome CheckClose(byte[] payload, ref (ushort Code, string Reason) failure)
    {
        if (payload.Length == 0)
        {
            return DecodeOutcome.Close;
        }

        if (payload.Length == 1 || !WebSocketCloseCodes.IsValidOnTheWire(BinaryPrimitives.ReadUInt16BigEndian(payload)))
        {
            failure = (WebSocketCloseCodes.ProtocolError, "a close frame has no valid status code");
            return DecodeOutcome.Fail;
        }

        if (!Utf8.IsValid(payload.AsSpan(2)))
        {
            failure = (WebSocketCloseCodes.InvalidPayloadData, "a close reason is not valid UTF-8");
            return DecodeOutcome.Fail;
        }

        return DecodeOutcome.Close;
    }

    private bool EndMessage(PayloadReader payload, ref int decoded, ref (ushort Code, string Reason) failure)
    {
        var inflater = _inflater;
        if (inflater is not null)
        {
            var ok = _discarding || Inflate(MessageInflater.MessageTail, payload, ref decoded, ref failure);
            _inflater = null;
            inflater.Return();
            if (!ok)
            {
                return false;
            }
        }

        var complete = _messageOpcode != OpText || _discarding || _utf8.IsComplete;
        _messageOpcode = 0;
        if (!complete)
        {
            failure = (WebSocketCloseCodes.InvalidPayloadData, "a text message ends inside a UTF-8 sequence");
        }

        return complete;
    }

    private bool Inflate(ReadOnlySpan<byte> compressed, PayloadReader payload, ref int decoded, ref (ushort Code, string Reason) failure)
    {
        var inflater = _inflater!;
        while (true)
        {
            var destination = payload.GetSpan(4096);
            int consumed, written;
            try
            {
                inflater.Inflate(compressed, destination, out consumed, out written);
            }
            catch (InvalidDataException)
            {
                failure = (WebSocketCloseCodes.InvalidPayloadData, "a compressed message is not valid DEFLATE data");
                return false;
            }

            if (_messageOpcode == OpText && !_utf8.Validate(destination[..written]))
            {
                failure = (WebSocketCloseCodes.InvalidPayloadData, "a text message is not valid UTF-8");
                return false;
            }

            payload.Advance(written);
            decoded += written;
            compressed = compressed[consumed..];
            // Done when the input is used up and zlib had room to spare (nothing of this input is left inside it).
            if ((compressed.IsEmpty && written < destination.Length) || (consumed == 0 && written == 0))
            {
                return true;
            }
        }
    }

    // XOR with the frame's mask, continuing from where the last piece of the same frame left off.
    private void Unmask(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        var mask = BitOperations.RotateRight(_mask, 8 * _maskOffset); // byte 0 of the rotated mask applies to source[0]
        var i = 0;
        if (Vector.IsHardwareAccelerated && source.Length >= Vector<byte>.Count)
        {
            var masks = Vector.AsVectorByte(new Vector<uint>(mask));
            for (; i <= source.Length - Vector<byte>.Count; i += Vector<byte>.Count)
            {
                (new Vector<byte>(source[i..]) ^ masks).CopyTo(destination[i..]);
            }
        }

        for (; i < source.Length; i++)
        {
            destination[i] = (byte)(source[i] ^ (byte)(mask >> (8 * (i & 3))));
        }

        UnmaskPosition(source.Length);
    }

    private void UnmaskPosition(int length) => _maskOffset = (_maskOffset + length) & 3;

    /// <summary>
    /// UTF-8 validation of a text message that arrives in pieces: a sequence cut by a piece boundary is held (at most 3
    /// bytes) and completed by the next piece.
    /// </summary>
    private struct Utf8Tail
    {
        private uint _pending;
        private int _count;

        public readonly bool IsComplete => _count == 0;

        public bool Validate(ReadOnlySpan<byte> data)
        {
            if (_count > 0)
            {
                Span<byte> sequence = stackalloc byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(sequence, _pending);
                var taken = Math.Min(4 - _count, data.Length);
                data[..taken].CopyTo(sequence[_count..]);
                var status = System.Text.Rune.DecodeFromUtf8(sequence[..(_count + taken)], out _, out var used);
                if (status == OperationStatus.NeedMoreData && taken == data.Length)
                {
                    _count += taken;
                    _pending = Pack(sequence[.._count]);
                    return true;
                }

                if (status != OperationStatus.Done)
                {
                    return false;
                }

                data = data[(used - _count)..];
                _count = 0;
                _pending = 0;
            }

            // The last sequence may be cut off: its lead byte is among the last three.
            var cut = data.Length;
            for (var i = data.Length - 1; i >= Math.Max(0, data.Length - 3); i--)
            {
                if ((data[i] & 0xC0) != 0x80)
                {
                    if (System.Text.Rune.DecodeFromUtf8(data[i..], out _, out _) == OperationStatus.NeedMoreData)
                    {
                        cut = i;
                    }

                    break;
                }
            }

            if (!Utf8.IsValid(data[..cut]))
            {
                return false;
            }

            _count = data.Length - cut;
            _pending = Pack(data[cut..]);
            return true;
        }

        private static uint Pack(ReadOnlySpan<byte> bytes)
        {
            Span<byte> packed = stackalloc byte[4];
            packed.Clear();
            bytes.CopyTo(packed);
            return BinaryPrimitives.ReadUInt32LittleEndian(packed);
        }
    }
}

/// <summary>RFC 6455 section 7.4 status codes the broker sends, and which codes may appear in a close frame.</summary>
internal static class WebSocketCloseCodes
{
    public const ushort NormalClosure = 1000;
    public const ushort EndpointUnavailable = 1001;
    public const ushort ProtocolError = 1002;
    public const ushort InvalidPayloadData = 1007;
    public const ushort PolicyViolation = 1008;
    public const ushort MessageTooBig = 1009;

    /// <summary>1004, 1005, 1006 and 1015 are reserved for reports, never sent; below 1000 and 1016–2999 are unassigned.</summary>
    public static bool IsValidOnTheWire(ushort code) =>
        code is (>= 1000 and <= 1003) or (>= 1007 and <= 1014) or (>= 3000 and <= 4999);
}
