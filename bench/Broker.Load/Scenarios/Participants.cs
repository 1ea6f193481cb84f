using System.Buffers.Text;
using System.Diagnostics;
using System.Text;
using Broker.Load.Connections;
using Broker.Load.Pacing;
using Broker.Load.Tracking;
using Broker.Stomp;

namespace Broker.Load.Scenarios;

/// <summary>Header names the tool stamps on every SEND; without dashes, so ActiveMQ keeps them as JMS properties.</summary>
internal static class LoadHeaders
{
    public static ReadOnlySpan<byte> Producer => "loadp"u8;

    public static ReadOnlySpan<byte> Sequence => "loadn"u8;

    public static ReadOnlySpan<byte> Timestamp => "loadt"u8;
}

/// <summary>What any participant reports up: the first ERROR or unexpected close fails the run.</summary>
internal sealed class RunFailure
{
    private readonly CancellationTokenSource _abort;

    public RunFailure(CancellationTokenSource abort) => _abort = abort;

    /// <summary>Fires when the run fails or ends; the only token a socket operation may be cancelled with, because a
    /// cancelled WebSocket send or receive aborts the connection.</summary>
    public CancellationToken Token => _abort.Token;

    public string? Error { get; private set; }

    public void Fail(string error)
    {
        lock (this)
        {
            Error ??= error;
        }

        _abort.Cancel();
    }
}

/// <summary>A producing connection: writes SENDs, counts what it flushed, and bounds itself by receipts.</summary>
internal sealed class Producer : IFrameHandler
{
    private readonly SemaphoreSlim _receiptSlots;
    private readonly int _receiptsOutstanding;
    private readonly byte[] _destination;
    private readonly byte[] _body;
    private readonly RunFailure _failure;
    private long _sent;

    public Producer(int index, LoadConnection connection, LoadOptions options, string destination, byte[] body, RunFailure failure)
    {
        Index = index;
        Connection = connection;
        _receiptsOutstanding = options.ReceiptsOutstanding;
        _receiptSlots = new SemaphoreSlim(options.ReceiptsOutstanding, options.ReceiptsOutstanding);
        _destination = Encoding.UTF8.GetBytes(destination);
        _body = body;
        _failure = failure;
    }

    public int Index { get; }

    public LoadConnection Connection { get; }

    /// <summary>Messages flushed to the socket.</summary>
    public long Sent => Volatile.Read(ref _sent);

    /// <summary>Writes of the paced producer: each carries the messages that came due since the one before.</summary>
    public long PacedWrites { get; private set; }

    public void OnFrame(in StompFrame frame)
    {
        switch (frame.Command)
        {
            case StompCommand.Receipt:
                _receiptSlots.Release();
                break;
            case StompCommand.Error:
                _failure.Fail($"producer {Index}: {LoadConnection.DescribeError(frame)}");
                break;
        }
    }

    public void WriteSend(long sequence, bool receipt, long timestamp)
    {
        var output = Connection.Output;
        StompWriter.WriteCommand(output, StompCommand.Send);
        StompWriter.WriteHeader(output, StompCommand.Send, Connection.Version, "destination"u8, _destination);
        StompWriter.WriteHeader(output, LoadHeaders.Producer, Index);
        StompWriter.WriteHeader(output, LoadHeaders.Sequence, sequence);
        if (timestamp != 0)
        {
            StompWriter.WriteHeader(output, LoadHeaders.Timestamp, timestamp);
        }

        if (receipt)
        {
            StompWriter.WriteHeader(output, "receipt"u8, sequence);
        }

        StompWriter.WriteBody(output, StompCommand.Send, _body);
        Connection.EndFrame();
    }

    /// <summary>
    /// As fast as the broker takes them: a receipt every <see cref="LoadOptions.ReceiptEvery"/> messages, at most
    /// <see cref="LoadOptions.ReceiptsOutstanding"/> of them unanswered, and never more than the window ahead of the
    /// consumers (<paramref name="ahead"/>).
    /// </summary>
    public async Task RunThroughputAsync(LoadOptions options, Func<long> ahead, long capacity, CancellationToken stop)
    {
        long sequence = 0;
        try
        {
            while (!stop.IsCancellationRequested && sequence < capacity)
            {
                while (ahead() > options.Window)
                {
                    await Task.Delay(1, stop);
                }

                for (var i = 0; i < options.ReceiptEvery && Connection.PendingBytes < 64 * 1024 && sequence < capacity; i++)
                {
                    var receipt = sequence % options.ReceiptEvery == options.ReceiptEvery - 1;
                    if (receipt && !_receiptSlots.Wait(0, CancellationToken.None))
                    {
                        await FlushAsync(sequence);
                        await _receiptSlots.WaitAsync(stop);
                    }

                    WriteSend(sequence++, receipt, timestamp: 0);
                }

                await FlushAsync(sequence);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        // What was written but not flushed when the stop came is not sent.
        if (Connection.PendingBytes > 0)
        {
            await FlushAsync(sequence);
        }
    }

    /// <summary>
    /// Paced: the messages due by now, each stamped with the time it is written. Stops early, as a failure, when the
    /// consumers fall <paramref name="maxBacklog"/> behind: the broker cannot keep up with the rate.
    /// </summary>
    public async Task RunPacedAsync(int rate, Func<long> ahead, long maxBacklog, long capacity, CancellationToken stop)
    {
        using var ticker = new MillisecondTicker();
        var start = Stopwatch.GetTimestamp();
        long sequence = 0;
        try
        {
            while (!stop.IsCancellationRequested && sequence < capacity)
            {
                var due = (long)(Stopwatch.GetElapsedTime(start).TotalSeconds * rate);
                if (due > sequence)
                {
                    // Burst ends are capped so a stall of the tool is not turned into one huge write.
                    var until = Math.Min(due, sequence + Math.Max(1, rate / 100));
                    var now = Stopwatch.GetTimestamp();
                    while (sequence < until)
                    {
                        WriteSend(sequence++, receipt: false, now);
                    }

                    await FlushAsync(sequence);
                    PacedWrites++;
                    if (ahead() > maxBacklog)
                    {
                        _failure.Fail($"the broker fell {maxBacklog:N0} messages behind a rate of {rate:N0}/s");
                        return;
                    }
                }
                else
                {
                    await ticker.WaitAsync(stop);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        if (Connection.PendingBytes > 0)
        {
            await FlushAsync(sequence);
        }
    }

    /// <summary>Waits for the receipts still outstanding; false if they do not come in time.</summary>
    public async Task<bool> WaitForReceiptsAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        for (var i = 0; i < _receiptsOutstanding; i++)
        {
            if (!await _receiptSlots.WaitAsync(timeout, cancellationToken))
            {
                return false;
            }
        }

        return true;
    }

    // Not cancelled by the end of sending (a cancelled WebSocket send aborts the connection): only by the run's end.
    private async ValueTask FlushAsync(long sequence)
    {
        await Connection.FlushAsync(_failure.Token);
        Volatile.Write(ref _sent, sequence);
    }
}

/// <summary>A consuming connection: checks every MESSAGE against what was sent, and times it when stamped.</summary>
internal sealed class Consumer : IFrameHandler
{
    private readonly SequenceSet[] _fromProducer;
    private readonly RunFailure _failure;
    private readonly LatencyRecorder? _latency;
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _received;

    public Consumer(int index, LoadConnection connection, int producers, RunFailure failure, LatencyRecorder? latency)
    {
        Index = index;
        Connection = connection;
        _fromProducer = new SequenceSet[producers];
        for (var i = 0; i < producers; i++)
        {
            _fromProducer[i] = new SequenceSet();
        }

        _failure = failure;
        _latency = latency;
    }

    public int Index { get; }

    public LoadConnection Connection { get; }

    public long Received => Volatile.Read(ref _received);

    public Task Subscribed => _subscribed.Task;

    public SequenceSet FromProducer(int producer) => _fromProducer[producer];

    /// <summary>Distinct messages so far (a duplicate does not count), read while the receive loop runs.</summary>
    public long Distinct
    {
        get
        {
            long distinct = 0;
            foreach (var set in _fromProducer)
            {
                distinct += set.Count;
            }

            return distinct;
        }
    }

    public void OnFrame(in StompFrame frame)
    {
        switch (frame.Command)
        {
            case StompCommand.Message:
                OnMessage(frame);
                break;
            case StompCommand.Receipt:
                _subscribed.TrySetResult();
                break;
            case StompCommand.Error:
                _failure.Fail($"consumer {Index}: {LoadConnection.DescribeError(frame)}");
                _subscribed.TrySetException(new IOException(LoadConnection.DescribeError(frame)));
                break;
        }
    }

    public void WriteSubscribe(string destination)
    {
        var output = Connection.Output;
        StompWriter.WriteCommand(output, StompCommand.Subscribe);
        LoadConnection.WriteHeader(output, StompCommand.Subscribe, "id", "0");
        LoadConnection.WriteHeader(output, StompCommand.Subscribe, "destination", destination);
        LoadConnection.WriteHeader(output, StompCommand.Subscribe, "ack", "auto");
        LoadConnection.WriteHeader(output, StompCommand.Subscribe, "receipt", "subscribed");
        StompWriter.WriteEnd(output);
        Connection.EndFrame();
    }

    private void OnMessage(in StompFrame frame)
    {
        var headers = frame.Headers;
        if (!TryGetNumber(headers, LoadHeaders.Producer, out var producer) || producer < 0 || producer >= _fromProducer.Length
            || !TryGetNumber(headers, LoadHeaders.Sequence, out var sequence))
        {
            _failure.Fail($"consumer {Index}: a MESSAGE without valid {Encoding.ASCII.GetString(LoadHeaders.Producer)}/{Encoding.ASCII.GetString(LoadHeaders.Sequence)} headers (not sent by this run)");
            return;
        }

        _fromProducer[producer].Add(sequence);
        if (_latency is not null && TryGetNumber(headers, LoadHeaders.Timestamp, out var sentAt))
        {
            _latency.Record(sentAt, Stopwatch.GetTimestamp());
        }

        Volatile.Write(ref _received, _received + 1);
    }

    private static bool TryGetNumber(StompHeaders headers, ReadOnlySpan<byte> name, out long value)
    {
        value = 0;
        return headers.TryGetValue(name, out var raw) && Utf8Parser.TryParse(raw, out value, out var used) && used == raw.Length;
    }
}
