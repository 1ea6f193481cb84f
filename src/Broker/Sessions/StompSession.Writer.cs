using System.Buffers;
using Broker.Diagnostics;
using Broker.Stomp;
using Broker.Transports;

namespace Broker.Sessions;

/// <summary>The writing half: drains the outbound queue into the transport, heart-beats, and the end of the connection.</summary>
internal sealed partial class StompSession
{
    // Flush at least this often within a burst so a large backlog reaches the socket in pieces.
    private const int FlushThresholdBytes = 64 * 1024;

    // How long a closing connection may take to send its last frames. A peer that does not read (the typical slow
    // consumer) would otherwise hold the writer in a flush, and the connection open, forever.
    private static readonly TimeSpan FinalFlushTimeout = TimeSpan.FromSeconds(5);

    // The writing half. One method, not a wrapper around a loop: an idle connection keeps this state machine waiting.
    private async Task RunWriterAsync()
    {
        await Task.Yield();
        try
        {
            var output = _transport.Output;
            var counts = new FrameCounts();
            while (await _outbound.WaitToReadAsync())
            {
                var unflushed = 0;
                while (_outbound.TryDequeue(out var item))
                {
                    if (item.CloseAfter is not null)
                    {
                        CountFrames(ref counts);
                        await _transport.FlushAsync(CancellationToken.None);
                        return;
                    }

                    switch (item.Kind)
                    {
                        case OutboundKind.Frame:
                            output.Write(item.Frame);
                            counts.Frames++;
                            break;
                        case OutboundKind.HeartBeat:
                            StompWriter.WriteHeartBeat(output);
                            counts.HeartBeats++;
                            break;
                        case OutboundKind.Message when item.Message is null:
                            continue; // dropped by the drop-oldest policy
                        case OutboundKind.Message when item.Subscription!.IsClosed:
                            // Unsubscribed while queued: an auto-ack queue message goes back rather than being lost.
                            item.Settlement?.Nack(requeue: true);
                            continue;
                        case OutboundKind.Message:
                            WriteMessage(output, item);
                            item.Settlement?.Ack();
                            counts.Messages++;
                            break;
                    }

                    _transport.EndFrame();
                    counts.Bytes += item.Size;
                    unflushed += item.Size;
                    if (unflushed >= FlushThresholdBytes)
                    {
                        CountFrames(ref counts);
                        if (!await FlushAsync())
                        {
                            return;
                        }

                        unflushed = 0;
                    }
                }

                CountFrames(ref counts);
                if (!await FlushAsync())
                {
                    return;
                }

                NotifyRoomIfDrained();
            }
        }
        catch (Exception ex)
        {
            BrokerLog.SessionFailed(_logger, Id, ex);
            RequestClose(CloseReason.PeerClosed, errorMessage: null);
        }
    }

    // Metrics once per flush rather than per frame: a burst of deliveries costs one update per kind.
    private void CountFrames(ref FrameCounts counts)
    {
        var metrics = _context.Metrics;
        if (counts.Messages > 0)
        {
            metrics.FramesOut.Add(counts.Messages, new KeyValuePair<string, object?>("kind", nameof(OutboundKind.Message)));
        }

        if (counts.Frames > 0)
        {
            metrics.FramesOut.Add(counts.Frames, new KeyValuePair<string, object?>("kind", nameof(OutboundKind.Frame)));
        }

        if (counts.HeartBeats > 0)
        {
            metrics.FramesOut.Add(counts.HeartBeats, new KeyValuePair<string, object?>("kind", nameof(OutboundKind.HeartBeat)));
        }

        if (counts.Bytes > 0)
        {
            metrics.BytesOut.Add(counts.Bytes);
        }

        counts = default;
    }

    private struct FrameCounts
    {
        public long Messages;
        public long Frames;
        public long HeartBeats;
        public long Bytes;
    }

    private void WriteMessage(IBufferWriter<byte> output, in OutboundItem item)
    {
        // The id is the session's prefix and the delivery's number, written after the prefix in place.
        System.Buffers.Text.Utf8Formatter.TryFormat(item.DeliveryId, _messageId.AsSpan(_messageIdPrefixLength), out var digits);
        var messageId = _messageId.AsSpan(0, _messageIdPrefixLength + digits);
        var subscription = item.Subscription!;
        item.Message!.Template.WriteTo(
            output,
            _version,
            subscription.IdUtf8,
            messageId,
            subscription.AckMode == AckMode.Auto ? default : messageId,
            item.Redelivered);
    }

    private async ValueTask<bool> FlushAsync()
    {
        if (!await _transport.FlushAsync(CancellationToken.None))
        {
            // The peer is gone: stop the reader too.
            RequestClose(CloseReason.PeerClosed, errorMessage: null);
            return false;
        }

        Volatile.Write(ref _lastSentTicks, _time.GetTimestamp());
        return true;
    }

    // Queues skipped this connection while its buffer was full; once it has drained to half, let them try again.
    private void NotifyRoomIfDrained()
    {
        Subscription[] waiting;
        lock (_outbound.SyncRoot)
        {
            if (_waitingForRoom is not { Count: > 0 } || _outbound.BufferedBytes > _outbound.MaxBytes / 2)
            {
                return;
            }

            waiting = [.. _waitingForRoom];
            _waitingForRoom.Clear();
        }

        foreach (var subscription in waiting)
        {
            subscription.Binding?.OnRoomAvailable();
        }
    }

    // Sends an EOL when nothing else went out for the outgoing interval; closes a client silent for the incoming
    // interval times the tolerance. Any byte received counts as a sign of life.
    private async Task RunHeartBeatsAsync(CancellationToken stop)
    {
        var outgoing = _heartBeat.OutgoingMs;
        var incomingLimit = (long)(_heartBeat.IncomingMs * _listener.HeartBeat.Tolerance);
        var candidates = new[] { outgoing, (int)Math.Min(incomingLimit, int.MaxValue) }.Where(ms => ms > 0);
        var period = TimeSpan.FromMilliseconds(Math.Max(50, candidates.Min() / 4));
        using var timer = new PeriodicTimer(period, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var now = _time.GetTimestamp();
                var lastReceived = Volatile.Read(ref _lastReceivedTicks);
                if (incomingLimit > 0 && lastReceived != ReaderBusy && _time.GetElapsedTime(lastReceived, now).TotalMilliseconds > incomingLimit)
                {
                    RequestClose(
                        CloseReason.Policy,
                        "heart-beat timeout",
                        $"Nothing was received from the client for {incomingLimit} ms (negotiated heart-beat {_heartBeat.IncomingMs} ms times {_listener.HeartBeat.Tolerance}).");
                    return;
                }

                // Beat a period early, so the next tick can never be late.
                if (outgoing > 0 && _time.GetElapsedTime(Volatile.Read(ref _lastSentTicks), now) >= TimeSpan.FromMilliseconds(outgoing) - period)
                {
                    lock (_outbound.SyncRoot)
                    {
                        _outbound.Enqueue(new OutboundItem(OutboundKind.HeartBeat, 1));
                    }

                    Volatile.Write(ref _lastSentTicks, now);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    // The connection is over: no more deliveries, subscriptions and temp queues removed, unacknowledged and unsent
    // queue messages given back, transactions discarded, the last frames sent, the transport closed.
    private async Task EndAsync(Task writer)
    {
        lock (_outbound.SyncRoot)
        {
            _closing = true;
        }

        // First send what is queued (up to and including a final RECEIPT or ERROR), then tear down.
        _outbound.Complete();
        try
        {
            await writer.WaitAsync(FinalFlushTimeout, _time);
        }
        catch (TimeoutException)
        {
            _transport.Abort(); // fails the pending flush, so the writer returns
            await writer;
        }

        // Whatever the writer could not send: auto-ack queue messages go back to their queues.
        while (_outbound.TryDequeue(out var unsent))
        {
            unsent.Settlement?.Nack(requeue: true);
        }

        foreach (var subscription in _subscriptions?.Values ?? Enumerable.Empty<Subscription>())
        {
            await CloseSubscriptionAsync(subscription);
        }

        _subscriptions?.Clear();
        foreach (var name in _temporaryQueues?.Values ?? Enumerable.Empty<string>())
        {
            await _backend.DeleteTemporaryQueueAsync(name, CancellationToken.None);
        }

        _transactions?.Clear();

        // Publishes still unconfirmed go on without us; nobody is left to tell if one fails.
        while (_unconfirmedPublishes?.TryDequeue(out var unconfirmed) == true)
        {
            _ = unconfirmed.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        var reason = _closeReason ?? CloseReason.PeerClosed;
        await _transport.CloseAsync(reason, CancellationToken.None);
        _registry.Remove(this);
        _context.Metrics.ConnectionsClosed.Add(1, new KeyValuePair<string, object?>("reason", _closeReason?.ToString() ?? "PeerClosed"));
        Dispose();
        BrokerLog.ConnectionClosed(_logger, Id, _transport.Name, _transport.RemoteAddress, _closeReason is null ? "client closed the connection" : $"{reason}: {_closeDescription}");
    }
}
