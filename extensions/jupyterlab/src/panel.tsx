/**
 * The frame of every sidebar panel: JupyterLab's SidePanel with a title, a
 * toolbar and collapsible sections, re-read while visible at the user's rate
 * and after actions that change what it shows.
 */

import { LabIcon, ReactWidget, SidePanel, ToolbarButton, refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { AccordionPanel, Widget } from '@lumino/widgets';
import * as React from 'react';

import { Topic, WorkbenchModel } from './model';

export class WorkbenchPanel extends SidePanel {
  constructor(options: { id: string; label: string; icon: LabIcon; model: WorkbenchModel; topics: Topic[] }) {
    super();
    this.model = options.model;
    this.id = options.id;
    this.addClass('jp-wb-Panel');
    this.title.icon = options.icon;
    this.title.caption = `Workbench: ${options.label}`;
    const heading = new Widget();
    const h2 = document.createElement('h2');
    h2.textContent = options.label;
    heading.node.appendChild(h2);
    heading.addClass('jp-wb-Panel-heading');
    this.header.addWidget(heading);
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({ icon: refreshIcon, tooltip: `Read ${options.label} again`, onClick: () => this.refresh() })
    );
    this.topics = new Set(options.topics);
    this.model.topicChanged.connect(this.onTopic, this);
    this.model.optionsChanged.connect(this.restartTimer, this);
  }

  readonly model: WorkbenchModel;

  /** Fires when the panel's sections should read their data again. */
  get refreshed(): ISignal<this, void> {
    return this._refreshed;
  }

  refresh(): void {
    this._refreshed.emit();
  }

  /** Add a section whose content `render` draws (a React element). */
  addSection(label: string, render: () => JSX.Element, className = ''): Section {
    const section = new Section(render);
    section.title.label = label;
    section.addClass('jp-wb-Section');
    if (className) {
      section.addClass(className);
    }
    this.addWidget(section);
    return section;
  }

  /** Share the height between the sections (one weight per section, in order). */
  setSectionSizes(weights: number[]): void {
    (this.content as AccordionPanel).setRelativeSizes(weights);
  }

  dispose(): void {
    window.clearInterval(this.timer);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.refresh();
    this.restartTimer();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    window.clearInterval(this.timer);
  }

  private restartTimer(): void {
    window.clearInterval(this.timer);
    if (this.isVisible) {
      this.timer = window.setInterval(() => this.refresh(), Math.max(2, this.model.options.refreshInterval) * 1000);
    }
  }

  private onTopic(_: WorkbenchModel, topic: Topic): void {
    if (this.topics.has(topic)) {
      this.refresh();
    }
  }

  private readonly topics: Set<Topic>;
  private timer = 0;
  private _refreshed = new Signal<this, void>(this);
}

/** One collapsible section of a panel. */
export class Section extends ReactWidget {
  constructor(private readonly renderContent: () => JSX.Element) {
    super();
  }

  protected render(): JSX.Element {
    return <div className="jp-wb-Section-body">{this.renderContent()}</div>;
  }
}
