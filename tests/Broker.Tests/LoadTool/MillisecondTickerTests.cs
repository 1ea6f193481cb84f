using Broker.Load.Pacing;

namespace Broker.Tests.LoadTool;

/// <summary>The paced producer's clock: it keeps ticking, a waiter can give up, and disposing it ends its thread.</summary>
public sealed class MillisecondTickerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_waiter_is_woken_again_and_again()
    {
        using var ticker = new MillisecondTicker();

        for (var i = 0; i < 20; i++)
        {
            await ticker.WaitAsync(CancellationToken.None).WaitAsync(Patience);
        }
    }

    [Fact]
    public async Task A_tick_that_came_while_nobody_waited_is_found_at_once()
    {
        using var ticker = new MillisecondTicker();
        await ticker.WaitAsync(CancellationToken.None).WaitAsync(Patience);

        // The producer was busy writing: the next wait must not cost it another tick.
        await Task.Delay(200);

        Assert.True(ticker.WaitAsync(CancellationToken.None).IsCompleted);
    }

    [Fact]
    public async Task A_cancelled_wait_ends_with_OperationCanceledException()
    {
        using var ticker = new MillisecondTicker();
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ticker.WaitAsync(cancel.Token));
    }

    [Fact]
    public void Dispose_ends_its_thread()
    {
        var ticker = new MillisecondTicker();
        Assert.True(ticker.IsRunning);

        ticker.Dispose();

        Assert.False(ticker.IsRunning);
    }
}
