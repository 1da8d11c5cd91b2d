import { QueryClientProvider } from '@tanstack/react-query';
import { RouterProvider } from '@tanstack/react-router';
import { setNonce } from 'get-nonce';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { makeQueryClient } from './lib/queryClient';
import { prefetchPages, router } from './router';
import './styles.css';

// The CSP allows styles by nonce only; dialogs inject one <style> and take it from here.
const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content;
if (nonce && !nonce.startsWith('%')) setNonce(nonce);

const queryClient = makeQueryClient();

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </StrictMode>,
  );
  // Once the first page is up, the other pages' code loads in the background: opening them
  // later needs no network for code, even while the platform is briefly away.
  const prefetch = () => setTimeout(() => void prefetchPages(), 0);
  if (document.readyState === 'complete') prefetch();
  else window.addEventListener('load', prefetch, { once: true });
}
