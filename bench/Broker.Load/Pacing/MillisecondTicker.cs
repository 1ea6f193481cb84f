namespace Broker.Load.Pacing;

/// <summary>
/// Wakes one waiter about once a millisecond, for the paced producer of the latency scenario.
/// </summary>
/// <remarks>
/// .NET's timers (<see cref="Task.Delay(int)"/>, <see cref="PeriodicTimer"/>) count time on a coarse clock that on
/// Linux moves once per kernel tick: with <c>CONFIG_HZ=250</c> <c>Task.Delay(1)</c> sleeps 4 ms, so a producer paced
/// by it sends the messages of 4–8 ms in one burst (40–80 at 10,000 msg/s), and the latency measured is that of
/// bursts. <see cref="Thread.Sleep(int)"/> sleeps on a high-resolution timer (1.1–1.3 ms here), so a dedicated thread
/// sleeps and releases the waiter.
/// </remarks>
internal sealed class MillisecondTicker : IDisposable
{
    private readonly SemaphoreSlim _tick = new(0, 1);
    private readonly Thread _thread;
    private volatile bool _stopped;

    public MillisecondTicker()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "stompload ticker" };
        _thread.Start();
    }

    /// <summary>Whether its thread is alive: from construction until <see cref="Dispose"/> returns.</summary>
    public bool IsRunning => _thread.IsAlive;

    /// <summary>Completes at the next tick, or at once when a tick came since the last wait (ticks do not pile up).</summary>
    public Task WaitAsync(CancellationToken cancellationToken) => _tick.WaitAsync(cancellationToken);

    public void Dispose()
    {
        _stopped = true;
        _thread.Join();
        _tick.Dispose();
    }

    private void Run()
    {
        while (!_stopped)
        {
            Thread.Sleep(1);

            // Only this thread releases, so the check cannot race another release past the maximum of 1.
            if (_tick.CurrentCount == 0)
            {
                _tick.Release();
            }
        }
    }
}
